package fence

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// geoJSONObject is what ParseGeoJSON reads of a GeoJSON object: its
// "type", and the raw text of its "coordinates" and "geometry" members.
type geoJSONObject struct {
	typ, coordinates, geometry string
	hasType                    bool
}

// maxJSONDepth bounds the nesting of the text (encoding/json allows
// 10,000; GeoJSON needs 5).
const maxJSONDepth = 1000

// scanGeoJSONObject validates s as JSON text and reads the members of its
// top-level object that ParseGeoJSON needs, skipping the others. It does
// what json.Unmarshal into a struct of json.RawMessage members did, in
// one pass instead of two and without reflection (a fence's text is
// mostly coordinates).
func scanGeoJSONObject(s string) (geoJSONObject, error) {
	p := jsonScanner{s: s}
	var obj geoJSONObject
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		if err := p.value(0); err != nil {
			return obj, err
		}
		return obj, errors.New("not a JSON object")
	}
	err := p.object(0, func(key string, start int) error {
		raw := p.s[start:p.i]
		switch key {
		case "type":
			if raw == "null" {
				obj.typ, obj.hasType = "", false
				return nil
			}
			if raw[0] != '"' {
				return fmt.Errorf(`"type" must be a string, got %.20s`, raw)
			}
			t, err := unquote(raw)
			obj.typ, obj.hasType = t, true
			return err
		case "coordinates":
			obj.coordinates = raw
		case "geometry":
			obj.geometry = raw
		}
		return nil
	})
	if err == nil {
		p.space()
		if p.i != len(p.s) {
			err = p.errorf("unexpected text after the object")
		}
	}
	return obj, err
}

// unquote decodes a JSON string token.
func unquote(raw string) (string, error) {
	if !strings.ContainsRune(raw, '\\') {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	err := json.Unmarshal([]byte(raw), &s)
	return s, err
}

// jsonScanner validates JSON text (RFC 8259) as it skips through it.
type jsonScanner struct {
	s string
	i int
}

func (p *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonScanner) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value skips one value (after optional space).
func (p *jsonScanner) value(depth int) error {
	if depth > maxJSONDepth {
		return p.errorf("nested too deeply")
	}
	p.space()
	if p.i >= len(p.s) {
		return p.errorf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth, nil)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
	default:
		return p.errorf("unexpected %q", c)
	}
	return nil
}

// object skips an object, calling member (when not nil) after each
// member's value with the key and the offset where the value starts.
func (p *jsonScanner) object(depth int, member func(key string, start int) error) error {
	p.i++ // '{'
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return p.errorf("want a member name")
		}
		kstart := p.i
		if err := p.str(); err != nil {
			return err
		}
		key := p.s[kstart:p.i]
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.errorf("want ':'")
		}
		p.i++
		p.space()
		vstart := p.i
		if err := p.value(depth + 1); err != nil {
			return err
		}
		if member != nil {
			k, err := unquote(key)
			if err != nil {
				return err
			}
			if err := member(k, vstart); err != nil {
				return err
			}
		}
		p.space()
		if p.i >= len(p.s) {
			return p.errorf("unterminated object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errorf("want ',' or '}'")
		}
	}
}

func (p *jsonScanner) array(depth int) error {
	p.i++ // '['
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		if err := p.value(depth + 1); err != nil {
			return err
		}
		p.space()
		if p.i >= len(p.s) {
			return p.errorf("unterminated array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errorf("want ',' or ']'")
		}
	}
}

func (p *jsonScanner) str() error {
	p.i++ // '"'
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return nil
		case c < 0x20:
			return p.errorf("control character in a string")
		case c == '\\':
			p.i++
			if p.i >= len(p.s) {
				return p.errorf("unterminated string")
			}
			switch p.s[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if p.i+5 > len(p.s) {
					return p.errorf("short \\u escape")
				}
				for _, h := range p.s[p.i+1 : p.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return p.errorf("bad \\u escape")
					}
				}
				p.i += 5
			default:
				return p.errorf("bad escape")
			}
		default:
			p.i++
		}
	}
	return p.errorf("unterminated string")
}

func (p *jsonScanner) digits() int {
	n := 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *jsonScanner) number() error {
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.digits() == 0:
		return p.errorf("bad number")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return p.errorf("bad number")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return p.errorf("bad number")
		}
	}
	return nil
}
