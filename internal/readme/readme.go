package readme

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DefaultSession is the name of the session of the blocks that come before
// any session directive.
const DefaultSession = "readme"

// Servers are the servers a session may need (session NAME needs=...), each
// with the address the README gives it.
var Servers = map[string]string{
	"redis":  "127.0.0.1:6379",
	"consul": "127.0.0.1:8500",
}

// Block is one shell block of the README.
type Block struct {
	// Line is the 1-based line of the block's opening fence.
	Line int
	// Text is the block's content, without the fences.
	Text string
	// Skip is why the block is not run; empty when it runs.
	Skip string
	// Background marks a long-running process, run in the background until
	// its session ends.
	Background bool
	// Wait, for a background block, matches the line of its output that
	// says it is ready; nil when there is nothing to wait for.
	Wait *regexp.Regexp
	// Expect are patterns the block's output must match.
	Expect []*regexp.Regexp
}

// Session is a run of blocks that share one shell.
type Session struct {
	// Name names the session (unique in the document).
	Name string
	// Line is the line of the session's first block.
	Line int
	// Needs are the servers (keys of Servers) the session needs, sorted.
	Needs []string
	// InRepo runs the session in the repository's root (dir=repo), for
	// examples such as `go run ./examples/...`, instead of an empty
	// directory of its own.
	InRepo bool
	// Blocks are the session's blocks in document order.
	Blocks []Block
}

// Runs reports whether any block of the session runs.
func (s Session) Runs() bool {
	for _, b := range s.Blocks {
		if b.Skip == "" {
			return true
		}
	}
	return false
}

// Text is the text of the blocks of the session that run, one after the
// other.
func (s Session) Text() string {
	var sb strings.Builder
	for _, b := range s.Blocks {
		if b.Skip == "" {
			sb.WriteString(b.Text)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

var (
	// directiveRE is a whole directive comment line.
	directiveRE = regexp.MustCompile(`^<!--\s*doctest:\s*(.*?)\s*-->$`)
	// sessionNameRE is what a session may be called (it names a subtest).
	sessionNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// shellLangs are the info strings of the blocks that run.
	shellLangs = []string{"sh", "bash", "shell"}
)

// pending are the directives read since the last block.
type pending struct {
	line    int // line of the first directive, 0 when there is none
	session string
	needs   []string
	inRepo  bool
	block   Block
}

// Parse returns the sessions of the shell blocks of a Markdown document
// (a README), with their directives. Sessions with no block are omitted.
func Parse(md string) ([]Session, error) {
	var (
		sessions []Session
		p        pending
		names    = map[string]int{}
	)
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimRight(lines[i], "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "<!--") && strings.Contains(trimmed, "doctest"):
			if err := p.add(trimmed, n); err != nil {
				return nil, err
			}
		case strings.HasPrefix(trimmed, "```"):
			fence := trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, "`"))]
			lang := strings.TrimSpace(trimmed[len(fence):])
			if f := strings.Fields(lang); len(f) > 0 {
				lang = f[0]
			}
			var body []string
			closed := false
			for i++; i < len(lines); i++ {
				l := strings.TrimRight(lines[i], "\r")
				if t := strings.TrimSpace(l); strings.HasPrefix(t, fence) && strings.Trim(t, "`") == "" {
					closed = true
					break
				}
				body = append(body, l)
			}
			if !closed {
				return nil, fmt.Errorf("line %d: code block is not closed", n)
			}
			if !slices.Contains(shellLangs, lang) {
				if p.line != 0 {
					return nil, fmt.Errorf("line %d: doctest directive before a %q block (only %s blocks run)", p.line, lang, strings.Join(shellLangs, ", "))
				}
				continue
			}
			b := p.block
			b.Line = n
			b.Text = strings.Join(body, "\n")
			if p.session != "" || len(sessions) == 0 {
				name := p.session
				if name == "" {
					name = DefaultSession
				}
				if first, ok := names[name]; ok {
					return nil, fmt.Errorf("line %d: session %q already started at line %d", n, name, first)
				}
				names[name] = n
				sessions = append(sessions, Session{Name: name, Line: n, Needs: p.needs, InRepo: p.inRepo})
			}
			s := &sessions[len(sessions)-1]
			s.Blocks = append(s.Blocks, b)
			p = pending{}
		case trimmed == "":
		default:
			if p.line != 0 {
				return nil, fmt.Errorf("line %d: doctest directive is not followed by a code block (line %d comes first)", p.line, n)
			}
		}
	}
	if p.line != 0 {
		return nil, fmt.Errorf("line %d: doctest directive is not followed by a code block", p.line)
	}
	return sessions, nil
}

// add reads one directive comment into p.
func (p *pending) add(comment string, n int) error {
	m := directiveRE.FindStringSubmatch(comment)
	if m == nil {
		return fmt.Errorf("line %d: doctest comment must read <!-- doctest: DIRECTIVE --> on one line", n)
	}
	if p.line == 0 {
		p.line = n
	}
	verb, arg, _ := strings.Cut(m[1], " ")
	arg = strings.TrimSpace(arg)
	b := &p.block
	switch verb {
	case "session":
		if p.session != "" {
			return fmt.Errorf("line %d: a second session directive for one block", n)
		}
		f := strings.Fields(arg)
		if len(f) == 0 || !sessionNameRE.MatchString(f[0]) {
			return fmt.Errorf("line %d: session needs a NAME of lower-case letters, digits and dashes", n)
		}
		p.session = f[0]
		for _, opt := range f[1:] {
			if opt == "dir=repo" {
				p.inRepo = true
				continue
			}
			list, ok := strings.CutPrefix(opt, "needs=")
			if !ok {
				return fmt.Errorf("line %d: session option %q: want needs=SERVER[,SERVER] or dir=repo", n, opt)
			}
			for _, s := range strings.Split(list, ",") {
				if _, known := Servers[s]; !known {
					return fmt.Errorf("line %d: session needs unknown server %q (known: redis, consul)", n, s)
				}
				if !slices.Contains(p.needs, s) {
					p.needs = append(p.needs, s)
				}
			}
		}
		slices.Sort(p.needs)
	case "skip":
		if arg == "" {
			return fmt.Errorf("line %d: skip needs a REASON", n)
		}
		b.Skip = arg
	case "background":
		b.Background = true
		if arg != "" {
			re, err := regexp.Compile(arg)
			if err != nil {
				return fmt.Errorf("line %d: background: %w", n, err)
			}
			b.Wait = re
		}
	case "expect":
		if arg == "" {
			return fmt.Errorf("line %d: expect needs a REGEX", n)
		}
		re, err := regexp.Compile("(?m)" + arg)
		if err != nil {
			return fmt.Errorf("line %d: expect: %w", n, err)
		}
		b.Expect = append(b.Expect, re)
	default:
		return fmt.Errorf("line %d: unknown doctest directive %q (want session, skip, background or expect)", n, verb)
	}
	if b.Skip != "" && (b.Background || len(b.Expect) > 0) {
		return fmt.Errorf("line %d: a skipped block takes no background or expect", n)
	}
	if b.Background && len(b.Expect) > 0 {
		return fmt.Errorf("line %d: a background block takes no expect (give background a REGEX to wait for)", n)
	}
	return nil
}

// addrRE matches a loopback address with a port.
var addrRE = regexp.MustCompile(`\b127\.0\.0\.(\d{1,3}):(\d{1,5})\b`)

// Addresses returns the distinct loopback addresses (127.0.0.x:PORT) that
// text mentions, in order of first mention.
func Addresses(text string) []string {
	var out []string
	for _, a := range addrRE.FindAllString(text, -1) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// Substitute replaces every loopback address of text that m maps.
func Substitute(text string, m map[string]string) string {
	return addrRE.ReplaceAllStringFunc(text, func(a string) string {
		if to, ok := m[a]; ok {
			return to
		}
		return a
	})
}
