package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	geomatchv1 "github.com/geomatch/geomatch/proto/geomatch/v1"
)

// hookGroup is `geomatch hook`.
var hookGroup = &apiGroup{
	name: "hook",
	about: `Keeps hooks through a router's EventService (--target): sinks the service
delivers matching events to, at least once and in per-driver order. An
ENDPOINT is http:// or https:// (a POST of a JSON batch, signed with the
hook's secret in X-Geomatch-Signature), nats://host:port/subject (JetStream)
or redis://host:port/stream (XADD).`,
	unary: true,
	commands: []apiCommand{
		{"put", "ID ENDPOINT [--set S ...] [--fence ID ...] [--kind fence|trip|driver ...] [--header k=v ...] [--secret S] [--from-oldest]",
			"create a hook or replace the one with this ID; prints its secret, which is shown only once", hookPut},
		{"list", "", "every hook with its delivery record: delivered, retried, dead-lettered, lag, last error", hookList},
		{"delete", "ID", "delete a hook", hookDelete},
	},
}

func runHook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return hookGroup.run(ctx, args, stdout, stderr)
}

func (c *apiClient) events() (geomatchv1.EventServiceClient, error) {
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	return geomatchv1.NewEventServiceClient(conn), nil
}

func hookPut(fs *flag.FlagSet) apiRun {
	var filter filterFlags
	filter.register(fs)
	var headers pairsFlag
	fs.Var(&headers, "header", "an extra HTTP header `NAME=VALUE` of a webhook's requests (repeatable)")
	secret := fs.String("secret", "", "HMAC-SHA256 `KEY` that signs webhook requests (default: the router generates one; prefer the environment twin)")
	return func(ctx context.Context, c *apiClient, args []string) error {
		switch len(args) {
		case 0:
			return badUsage("missing ID and ENDPOINT")
		case 1:
			return badUsage("missing ENDPOINT (http(s)://..., nats://host:port/subject or redis://host:port/stream)")
		case 2:
		default:
			return badUsage("unexpected arguments after ID ENDPOINT: %s", strings.Join(args[2:], " "))
		}
		h := &geomatchv1.Hook{HookId: args[0], Endpoint: args[1], Sets: filter.sets, FenceIds: filter.fences, Kinds: filter.kinds,
			Headers: headers, Secret: *secret, FromOldest: filter.fromOldest}
		ec, err := c.events()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		out, err := ec.PutHook(ctx, h)
		if err != nil {
			return c.routerErr("put hook "+h.HookId, err)
		}
		if c.json {
			return c.emit(out)
		}
		fmt.Fprintf(c.out, "put hook %s -> %s (%s)\n", out.GetHookId(), out.GetEndpoint(), hookFilter(out))
		switch {
		case out.GetSecret() != "":
			fmt.Fprintf(c.out, "secret: %s\n  Store it now: the router shows it only this once. Webhook requests carry\n  X-Geomatch-Signature, an HMAC-SHA256 of the body with this key.\n", out.GetSecret())
		case *secret != "":
			fmt.Fprintln(c.out, "secret: the one given with --secret")
		}
		return nil
	}
}

// hookFilter describes what a hook receives.
func hookFilter(h *geomatchv1.Hook) string {
	var parts []string
	if len(h.GetKinds()) > 0 {
		parts = append(parts, "kinds "+kindString(h.GetKinds()))
	} else {
		parts = append(parts, "every kind")
	}
	if len(h.GetSets()) > 0 {
		parts = append(parts, "sets "+strings.Join(h.GetSets(), ","))
	}
	if len(h.GetFenceIds()) > 0 {
		parts = append(parts, "fences "+strings.Join(h.GetFenceIds(), ","))
	}
	if h.GetFromOldest() {
		parts = append(parts, "from the oldest event")
	}
	return strings.Join(parts, "; ")
}

func hookList(*flag.FlagSet) apiRun {
	return func(ctx context.Context, c *apiClient, args []string) error {
		if len(args) > 0 {
			return badUsage("unexpected arguments: %s", strings.Join(args, " "))
		}
		ec, err := c.events()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		resp, err := ec.ListHooks(ctx, &geomatchv1.ListHooksRequest{})
		if err != nil {
			return c.routerErr("list hooks", err)
		}
		slices.SortFunc(resp.Hooks, func(a, b *geomatchv1.Hook) int { return cmp.Compare(a.GetHookId(), b.GetHookId()) })
		if c.json {
			return c.emit(resp)
		}
		tw := c.table()
		fmt.Fprintln(tw, "HOOK\tENDPOINT\tFILTER\tDELIVERED\tRETRIED\tDEAD-LETTERED\tLAG EVENTS\tLAG S\tLAST DELIVERED\tLAST ERROR")
		for _, h := range resp.GetHooks() {
			s := h.GetStats()
			last := "-"
			if ms := s.GetLastDeliveredMs(); ms > 0 {
				last = time.UnixMilli(ms).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s\n", h.GetHookId(), h.GetEndpoint(), hookFilter(h),
				s.GetDelivered(), s.GetRetried(), s.GetDeadLettered(), s.GetLagEvents(), s.GetLagSeconds(), last,
				cmp.Or(oneLine(s.GetLastError()), "-"))
		}
		return tw.Flush()
	}
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func hookDelete(*flag.FlagSet) apiRun {
	return func(ctx context.Context, c *apiClient, args []string) error {
		id, err := needID(args, "ID")
		if err != nil {
			return err
		}
		ec, err := c.events()
		if err != nil {
			return err
		}
		ctx, cancel := c.call(ctx)
		defer cancel()
		resp, err := ec.DeleteHook(ctx, &geomatchv1.DeleteHookRequest{HookId: id})
		if err != nil {
			return c.routerErr("delete hook "+id, err)
		}
		if c.json {
			return c.emit(resp)
		}
		_, err = fmt.Fprintf(c.out, "deleted hook %s\n", id)
		return err
	}
}
