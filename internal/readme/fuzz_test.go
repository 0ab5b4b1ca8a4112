package readme

import (
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, and that what it returns holds
// together: every block lies inside the document, in order, session names
// are unique and only sessions' blocks carry directives that parse.
func FuzzParse(f *testing.F) {
	f.Add("```sh\necho a\n```\n")
	f.Add("<!-- doctest: session s needs=redis -->\n<!-- doctest: background up -->\n```sh\nserver\n```\n<!-- doctest: expect ^ok -->\n```bash\nclient\n```\n")
	f.Add("<!-- doctest: skip why -->\n\n````sh\n```\n````\n")
	f.Add("<!-- doctest: expect a( -->\n```sh\nx\n```\n")
	f.Add("```\n<!-- doctest: skip x -->\n```\n")
	f.Fuzz(func(t *testing.T, md string) {
		sessions, err := Parse(md)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not name a line", err)
			}
			return
		}
		lines := strings.Count(md, "\n") + 1
		// Parse reads lines with their trailing carriage returns cut (a
		// README saved with CRLF endings runs as one with LF endings), so
		// a block's text is in the document as Parse sees it.
		seenDoc := strings.Split(md, "\n")
		for i := range seenDoc {
			seenDoc[i] = strings.TrimRight(seenDoc[i], "\r")
		}
		doc := strings.Join(seenDoc, "\n")
		seen := map[string]bool{}
		last := 0
		for _, s := range sessions {
			if seen[s.Name] {
				t.Fatalf("session %q twice", s.Name)
			}
			seen[s.Name] = true
			if len(s.Blocks) == 0 || s.Line != s.Blocks[0].Line {
				t.Fatalf("session %q: line %d, blocks %d", s.Name, s.Line, len(s.Blocks))
			}
			for _, b := range s.Blocks {
				if b.Line <= last || b.Line > lines {
					t.Fatalf("block at line %d after line %d in a document of %d lines", b.Line, last, lines)
				}
				last = b.Line
				if b.Skip != "" && (b.Background || len(b.Expect) > 0) {
					t.Fatalf("block at line %d is skipped and runs", b.Line)
				}
				if !strings.Contains(doc, b.Text) {
					t.Fatalf("block at line %d: text %q not in the document", b.Line, b.Text)
				}
			}
		}
		// Substitute leaves text without addresses alone.
		if len(Addresses(md)) == 0 && Substitute(md, map[string]string{"127.0.0.1:1": "x"}) != md {
			t.Fatal("Substitute changed text without addresses")
		}
	})
}
