package readme

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// summary is what a test compares of a parsed document: per session its
// name, needs and blocks, each as "LINE[:skip][:bg=REGEX][:expect=REGEX...] TEXT".
func summary(sessions []Session) []string {
	var out []string
	for _, s := range sessions {
		line := "session " + s.Name + " " + strings.Join(s.Needs, ",")
		if s.InRepo {
			line += " in-repo"
		}
		out = append(out, line)
		for _, b := range s.Blocks {
			line := strconv.Itoa(b.Line)
			if b.Skip != "" {
				line += ":skip=" + b.Skip
			}
			if b.Background {
				line += ":bg="
				if b.Wait != nil {
					line += b.Wait.String()
				}
			}
			for _, re := range b.Expect {
				line += ":expect=" + re.String()
			}
			out = append(out, line+" "+b.Text)
		}
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want []string
	}{
		{"no blocks", "# title\n\ntext\n", nil},
		{
			"blocks before any session directive form the default session",
			"text\n```sh\necho a\n```\n\n```bash\necho b\n```\n",
			[]string{"session readme ", "2 echo a", "6 echo b"},
		},
		{
			"other languages and plain fences are not run",
			"```\ngeomatch dev\n```\n```go\nfmt.Println()\n```\n```sh\necho a\n```\n",
			[]string{"session readme ", "7 echo a"},
		},
		{
			"a session directive starts a session the next blocks share",
			"```sh\necho a\n```\n<!-- doctest: session two needs=redis,consul -->\n```sh\necho b\n```\n```sh\necho c\n```\n",
			[]string{"session readme ", "1 echo a", "session two consul,redis", "5 echo b", "8 echo c"},
		},
		{
			"directives with blank lines before the block",
			"<!-- doctest: background listening on \\d+ -->\n\n```sh\nserver\n```\n<!-- doctest: expect ^ok -->\n<!-- doctest: expect done$ -->\n```sh\nclient\n```\n",
			[]string{"session readme ", `3:bg=listening on \d+ server`, "8:expect=(?m)^ok:expect=(?m)done$ client"},
		},
		{
			"skip keeps its reason, and a background without a pattern",
			"<!-- doctest: skip needs the internet -->\n```sh\ncurl x\n```\n<!-- doctest: background -->\n```sh\nsleep 9\n```\n",
			[]string{"session readme ", "2:skip=needs the internet curl x", "6:bg= sleep 9"},
		},
		{
			"a multi-line block keeps its lines; a longer fence holds backticks",
			"````sh\necho '```'\necho b\n````\n",
			[]string{"session readme ", "1 echo '```'\necho b"},
		},
		{
			"dir=repo runs a session in the repository",
			"<!-- doctest: session sdk dir=repo needs=redis -->\n```sh\ngo run ./examples/nearby\n```\n",
			[]string{"session sdk redis in-repo", "2 go run ./examples/nearby"},
		},
		{
			"a session of skipped blocks only is kept",
			"<!-- doctest: session s -->\n<!-- doctest: skip why -->\n```sh\nx\n```\n",
			[]string{"session s ", "3:skip=why x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.md)
			if err != nil {
				t.Fatal(err)
			}
			if s := summary(got); !reflect.DeepEqual(s, tt.want) {
				t.Errorf("got\n  %q\nwant\n  %q", s, tt.want)
			}
		})
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, md, want string
	}{
		{"unknown directive", "<!-- doctest: run -->\n```sh\nx\n```\n", `line 1: unknown doctest directive "run"`},
		{"malformed comment", "<!-- doctest: skip why\n-->\n```sh\nx\n```\n", "line 1: doctest comment must read"},
		{"directive before text", "<!-- doctest: skip why -->\ntext\n```sh\nx\n```\n", "line 1: doctest directive is not followed by a code block (line 2 comes first)"},
		{"directive at the end", "```sh\nx\n```\n<!-- doctest: skip why -->\n", "line 4: doctest directive is not followed by a code block"},
		{"directive before a non-shell block", "<!-- doctest: skip why -->\n```go\nx\n```\n", `line 1: doctest directive before a "go" block`},
		{"skip without reason", "<!-- doctest: skip -->\n```sh\nx\n```\n", "line 1: skip needs a REASON"},
		{"expect without pattern", "<!-- doctest: expect -->\n```sh\nx\n```\n", "line 1: expect needs a REGEX"},
		{"bad expect pattern", "<!-- doctest: expect a( -->\n```sh\nx\n```\n", "line 1: expect: error parsing regexp"},
		{"bad background pattern", "<!-- doctest: background [ -->\n```sh\nx\n```\n", "line 1: background: error parsing regexp"},
		{"skip and expect", "<!-- doctest: skip why -->\n<!-- doctest: expect x -->\n```sh\nx\n```\n", "line 2: a skipped block takes no background or expect"},
		{"background and expect", "<!-- doctest: background -->\n<!-- doctest: expect x -->\n```sh\nx\n```\n", "line 2: a background block takes no expect"},
		{"session without name", "<!-- doctest: session -->\n```sh\nx\n```\n", "line 1: session needs a NAME"},
		{"session with a bad name", "<!-- doctest: session Dev/1 -->\n```sh\nx\n```\n", "line 1: session needs a NAME"},
		{"unknown server", "<!-- doctest: session a needs=nats -->\n```sh\nx\n```\n", `line 1: session needs unknown server "nats"`},
		{"unknown session option", "<!-- doctest: session a fast -->\n```sh\nx\n```\n", `line 1: session option "fast"`},
		{"two sessions on a block", "<!-- doctest: session a -->\n<!-- doctest: session b -->\n```sh\nx\n```\n", "line 2: a second session directive"},
		{"a session name twice", "<!-- doctest: session a -->\n```sh\nx\n```\n<!-- doctest: session a -->\n```sh\ny\n```\n", `line 6: session "a" already started at line 2`},
		{"default session name reused", "```sh\nx\n```\n<!-- doctest: session readme -->\n```sh\ny\n```\n", `line 5: session "readme" already started at line 1`},
		{"unclosed block", "```sh\nx\n", "line 1: code block is not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.md)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Parse: %v, want an error starting %q", err, tt.want)
			}
		})
	}
}

func TestAddressesAndSubstitute(t *testing.T) {
	text := "P=m1=127.0.0.2:7001,m2=127.0.0.3:7001\nrouter --listen 127.0.0.1:50051 --hosts 127.0.0.1,localhost\n" +
		"hook http://127.0.0.1:8080/geofence and 127.0.0.2:7001 again; not 127.0.0.1:123456 nor 10.0.0.1:80\n"
	got := Addresses(text)
	want := []string{"127.0.0.2:7001", "127.0.0.3:7001", "127.0.0.1:50051", "127.0.0.1:8080"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Addresses = %q, want %q", got, want)
	}
	sub := Substitute(text, map[string]string{
		"127.0.0.2:7001":  "127.0.0.2:41001",
		"127.0.0.1:50051": "127.0.0.1:42002",
	})
	wantSub := "P=m1=127.0.0.2:41001,m2=127.0.0.3:7001\nrouter --listen 127.0.0.1:42002 --hosts 127.0.0.1,localhost\n" +
		"hook http://127.0.0.1:8080/geofence and 127.0.0.2:41001 again; not 127.0.0.1:123456 nor 10.0.0.1:80\n"
	if sub != wantSub {
		t.Fatalf("Substitute =\n%s\nwant\n%s", sub, wantSub)
	}
}

// TestREADMEParses checks the README's directives without running
// anything, so a malformed one fails fast even where the doc-test skips.
func TestREADMEParses(t *testing.T) {
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := Parse(string(md))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	runs := 0
	for _, s := range sessions {
		for _, b := range s.Blocks {
			if b.Skip == "" {
				runs++
			}
		}
	}
	if runs == 0 {
		t.Fatal("README.md has no shell block that runs")
	}
}
