package resp

import "fmt"

// frameScan follows the RESP frames of a connection as they arrive, before
// the protocol library parses them, to refuse a multibulk header beyond
// MaxArgs: redcon's reader loops once per announced argument even when
// their bytes never come, so "*1000000000000000000\r\n" alone would spin a
// core for ever. It knows only the framing (multibulk and bulk lengths, and
// inline commands up to their newline); anything else is left to the
// library, which refuses it. The zero value is at a command's start.
type frameScan struct {
	state  scanState
	n      int64 // the number being read
	digits int
	args   int64 // bulk strings left in the current command
	skip   int64 // bytes of the current bulk string left, its CRLF included
}

type scanState uint8

const (
	scanStart     scanState = iota // a command's first byte
	scanCount                      // the digits of "*N"
	scanCountLF                    // the '\n' after "*N\r"
	scanDollar                     // a bulk string's '$'
	scanBulkLen                    // the digits of "$N"
	scanBulkLenLF                  // the '\n' after "$N\r"
	scanBulk                       // a bulk string's bytes and CRLF
	scanInline                     // an inline command, up to its '\n'
	scanLost                       // framing the library will refuse anyway
)

// maxDigits bounds a length's digits (an int64 has 19).
const maxDigits = 18

// frameError is a frame refused by frameScan.
type frameError struct {
	protocol bool // a protocol error (else a size bound)
	msg      string
}

func (e *frameError) Error() string { return e.msg }

// reply is the error reply that ends the connection.
func (e *frameError) reply() string {
	if e.protocol {
		return "ERR Protocol error: " + e.msg + ": closing the connection"
	}
	return "ERR " + e.msg + ": closing the connection"
}

// feed follows b; it returns an error when a multibulk header announces
// more than MaxArgs arguments or a bulk string more than maxBulk bytes.
func (s *frameScan) feed(b []byte, maxBulk int64) *frameError {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch s.state {
		case scanLost:
			return nil
		case scanStart:
			switch c {
			case '*':
				s.state, s.n, s.digits = scanCount, 0, 0
			case '\r', '\n':
			default:
				s.state = scanInline
			}
		case scanInline:
			if c == '\n' {
				s.state = scanStart
			}
		case scanCount, scanBulkLen:
			switch {
			case c >= '0' && c <= '9':
				if s.digits++; s.digits > maxDigits {
					return &frameError{protocol: true, msg: fmt.Sprintf("a length of more than %d digits", maxDigits)}
				}
				s.n = s.n*10 + int64(c-'0')
			case c == '\r' && s.state == scanCount:
				if s.n > MaxArgs {
					return &frameError{protocol: true, msg: fmt.Sprintf("%d arguments announced, at most %d", s.n, MaxArgs)}
				}
				s.args, s.state = s.n, scanCountLF
			case c == '\r':
				if s.n > maxBulk {
					return &frameError{msg: fmt.Sprintf("request larger than %d bytes (a bulk string of %d announced)", maxBulk, s.n)}
				}
				s.skip, s.state = s.n+2, scanBulkLenLF
			default:
				s.state = scanLost // a sign or garbage: the library refuses it
			}
		case scanCountLF, scanBulkLenLF:
			if c != '\n' {
				s.state = scanLost
				continue
			}
			switch {
			case s.state == scanBulkLenLF:
				s.state = scanBulk
			case s.args <= 0:
				s.state = scanStart
			default:
				s.state = scanDollar
			}
		case scanDollar:
			if c != '$' {
				s.state = scanLost
				continue
			}
			s.state, s.n, s.digits = scanBulkLen, 0, 0
		case scanBulk:
			// Skip the rest of the string in one step.
			k := min(int64(len(b)-i), s.skip)
			s.skip -= k
			i += int(k) - 1
			if s.skip == 0 {
				if s.args--; s.args <= 0 {
					s.state = scanStart
				} else {
					s.state = scanDollar
				}
			}
		}
	}
	return nil
}
