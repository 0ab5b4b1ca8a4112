package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// violationHelp says what each check means, for the table.
var violationHelp = map[string]string{
	VDoubleAssignment: "a driver on two live trips at once",
	VLostTrip:         "trip acknowledged, then not found",
	VLostUpdate:       "acknowledged position neither held nor superseded",
	VStaleAnswer:      "answer older than an acknowledged update by > max age",
	VPhantomPosition:  "answer shows a position never sent",
	VIncompleteAnswer: "answer not flagged partial leaves a driver out",
	VRejectedUpdate:   "location update refused",
	VFailedQuery:      "nearby query returned an error",
	VFailedRide:       "ride request failed without UNAVAILABLE",
	VStreamEnded:      "driver stream ended by the server",
	VStrandedTrip:     "trip left REQUESTED/OFFERED",
}

// WriteTable prints the verdict table and the figures.
func WriteTable(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	r, s := rep.Result, rep.Result.Stats
	fmt.Fprintf(tw, "geomatch chaos --scenario %s --seed %d: %d matchers, %d routers, %v\n", rep.Scenario, rep.Seed, rep.Matchers, rep.Routers, rep.Duration)
	batched := ""
	if rep.BatchedUpdatesPerS > 0 {
		batched = fmt.Sprintf(" (%.0f/s of them in UpdateLocations batches)", rep.BatchedUpdatesPerS)
	}
	fmt.Fprintf(tw, "load\t%.0f updates/s%s, %.0f nearby/s, %.1f rides/s (not started on time: %d updates, %d queries, %d rides)\n",
		rep.UpdatesPerS, batched, rep.QueriesPerS, rep.RidesPerS, rep.Skipped.Updates, rep.Skipped.Queries, rep.Skipped.Rides)
	for _, f := range rep.Faults {
		node := f.Node
		if node == "" {
			node = "-"
		}
		e := ""
		if f.Error != "" {
			e = "  ERROR: " + f.Error
		}
		fmt.Fprintf(tw, "fault\t%-12s %-4s at %6.1fs for %4.1fs%s\n", f.Kind, node, f.Began.Seconds(), f.For.Seconds(), e)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CHECK\tCOUNT\tVERDICT\tMEANING")
	for _, k := range violationOrder {
		n := r.Count(k)
		v := "ok"
		if n > 0 {
			v = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", k, n, v, violationHelp[k])
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "FIGURE\tVALUE")
	fmt.Fprintf(tw, "updates sent / acked / rejected / unknown\t%d / %d / %d / %d\n", s.Updates, s.UpdatesAcked, s.UpdatesRejected, s.UpdatesUnknown)
	if len(s.RejectReasons) > 0 {
		fmt.Fprintf(tw, "rejections by reason\t%v\n", s.RejectReasons)
	}
	fmt.Fprintf(tw, "queries / failed / partial (flagged)\t%d / %d / %d\n", s.Queries, s.QueriesFailed, s.QueriesPartial)
	fmt.Fprintf(tw, "full answers judged for completeness\t%d\n", s.AnswersChecked)
	fmt.Fprintf(tw, "rides / acked / unavailable / failed\t%d / %d / %d / %d\n", s.Rides, s.RidesAcked, s.RidesUnavailable, s.RidesFailed)
	fmt.Fprintf(tw, "trips assigned; final states\t%d; %v\n", s.TripsAssigned, s.TripFinal)
	fmt.Fprintf(tw, "offer answers / progress reports refused\t%d / %d\n", s.AnswersFailed, s.ProgressFailed)
	fmt.Fprintf(tw, "streams / ended by server\t%d / %d\n", s.Streams, s.StreamsEnded)
	fmt.Fprintf(tw, "readbacks / failed or partial\t%d / %d\n", s.Readbacks, s.ReadbacksFailed)
	q := func(name string, v Quantiles) {
		fmt.Fprintf(tw, "%s p50 / p99 / max\t%.0f / %.0f / %.0f ms (n=%d)\n", name, v.P50, v.P99, v.Max, v.N)
	}
	q("time to serve again per fault", s.ServeAgain)
	q("update ack latency", s.AckLatency)
	q("update ack latency, fault windows", s.AckLatencyWindow)
	q("nearby latency", s.QueryLatency)
	q("nearby latency, fault windows", s.QueryLatencyWindow)
	q("position age of stale results", s.PositionAge)
	fmt.Fprintf(tw, "stale results / results\t%d / %d\n", s.StaleResults, s.Results)
	if r.Dropped > 0 {
		fmt.Fprintf(tw, "history incomplete\t%d ops dropped (raise --max-ops)\n", r.Dropped)
	}
	fmt.Fprintln(tw)
	for _, v := range r.Violations {
		fmt.Fprintf(tw, "%s (%d), e.g.:\n", v.Kind, v.Count)
		for _, e := range v.Examples {
			fmt.Fprintf(tw, "  %s\n", e)
		}
	}
	fmt.Fprintf(tw, "VERDICT\t%s\n", rep.Verdict)
	return tw.Flush()
}

// WriteJSON writes the report as JSON to path.
func WriteJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
