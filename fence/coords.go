package fence

import (
	"fmt"
	"math"
	"strconv"
)

// coordScanner reads the nested number arrays of a GeoJSON "coordinates"
// member, much faster than encoding/json's reflection, from text that
// encoding/json has already found to be valid JSON: it only needs to check
// the shape (arrays nested to the right depth, numbers at the bottom).
type coordScanner struct {
	s string
	i int
}

func (p *coordScanner) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// list reads an array, calling elem for each element.
func (p *coordScanner) list(what string, elem func() error) error {
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != '[' {
		return fmt.Errorf("bad coordinates: want an array of %s at offset %d", what, p.i)
	}
	p.i++
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		p.skipSpace()
		if p.i >= len(p.s) {
			return fmt.Errorf("bad coordinates: unterminated array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return fmt.Errorf("bad coordinates: unexpected %q at offset %d", p.s[p.i], p.i)
		}
	}
}

// position reads [lng, lat, ...]: extra numbers (altitude) are ignored.
func (p *coordScanner) position() ([2]float64, error) {
	var pos [2]float64
	n := 0
	err := p.list("numbers", func() error {
		x, err := p.number()
		if err != nil {
			return err
		}
		if n < 2 {
			pos[n] = x
		}
		n++
		return nil
	})
	if err == nil && n < 2 {
		err = fmt.Errorf("bad coordinates: a position has %d numbers, want [longitude, latitude]", n)
	}
	return pos, err
}

func (p *coordScanner) number() (float64, error) {
	p.skipSpace()
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	if start == p.i {
		return 0, fmt.Errorf("bad coordinates: want a number at offset %d", start)
	}
	x, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil || math.IsInf(x, 0) {
		return 0, fmt.Errorf("bad coordinates: %q is not a finite number", p.s[start:p.i])
	}
	return x, nil
}

// ring reads an array of positions.
func (p *coordScanner) ring() ([][2]float64, error) {
	var ring [][2]float64
	err := p.list("positions", func() error {
		pos, err := p.position()
		ring = append(ring, pos)
		return err
	})
	return ring, err
}

// polygon reads an array of rings.
func (p *coordScanner) polygon() ([][][2]float64, error) {
	var rings [][][2]float64
	err := p.list("rings", func() error {
		r, err := p.ring()
		rings = append(rings, r)
		return err
	})
	return rings, err
}

// end checks that nothing but space follows.
func (p *coordScanner) end() error {
	p.skipSpace()
	if p.i != len(p.s) {
		return fmt.Errorf("bad coordinates: unexpected text at offset %d", p.i)
	}
	return nil
}

// parsePolygonCoords reads a Polygon's coordinates.
func parsePolygonCoords(s string) ([][][2]float64, error) {
	p := coordScanner{s: s}
	rings, err := p.polygon()
	if err == nil {
		err = p.end()
	}
	return rings, err
}

// parseMultiPolygonCoords reads a MultiPolygon's coordinates.
func parseMultiPolygonCoords(s string) ([][][][2]float64, error) {
	p := coordScanner{s: s}
	var polys [][][][2]float64
	err := p.list("polygons", func() error {
		rings, err := p.polygon()
		polys = append(polys, rings)
		return err
	})
	if err == nil {
		err = p.end()
	}
	return polys, err
}
