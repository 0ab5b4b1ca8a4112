package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"time"

	"github.com/geomatch/geomatch/auth"
	"github.com/geomatch/geomatch/router"
)

// auditMint writes the audit record of `geomatch admin token` to stderr
// (stdout carries only the token): the local user who minted it, the
// token's role, subject and lifetime, and the outcome.
func auditMint(stderr io.Writer, subject string, role auth.Role, ttl time.Duration, err error) {
	who := "local user unknown"
	if u, uerr := user.Current(); uerr == nil {
		who = "local user " + u.Username
	}
	router.LogAudit(context.Background(), slog.New(slog.NewTextHandler(stderr, nil)), router.AuditRecord{
		Action: router.AuditTokenMint, Caller: who, Target: fmt.Sprintf("%s %s (ttl %s)", role, subject, ttl), Err: err,
	})
}
