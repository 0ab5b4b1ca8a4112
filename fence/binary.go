package fence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/geomatch/geomatch/internal/geo"
)

// The binary form of a shape, for a shape already validated once (by
// ParseGeoJSON or NewCircle) that travels between processes: a router
// validates a fence's GeoJSON when it is put and stores this form with
// it, and each matcher rebuilds the shape from it in microseconds instead
// of parsing and validating the text again (a 500-vertex polygon takes a
// few hundred microseconds to parse and check).
//
// Layout (little endian):
//
//	circle:  kind=2, lat, lng, radius_m (float64 each)
//	polygon: kind=1, uvarint positions, uvarint parts, then per part
//	         uvarint rings, uvarint length of each ring, then the ring
//	         longitudes and latitudes (float64 each), unwrapped as the
//	         part holds them.
//
// DecodeShape checks the structure (lengths, ring sizes, finite
// coordinates, bounds), so corrupt input gives an error and never a
// panic, but it does not repeat the simplicity checks of ParseGeoJSON.

const (
	shapePolygon byte = 1
	shapeCircle  byte = 2
)

// AppendShape appends the binary form of s to b.
func AppendShape(b []byte, s Shape) []byte {
	switch s := s.(type) {
	case *Circle:
		b = append(b, shapeCircle)
		b = appendFloat(b, s.center.Lat)
		b = appendFloat(b, s.center.Lng)
		return appendFloat(b, s.radiusM)
	case *Polygon:
		b = append(b, shapePolygon)
		b = binary.AppendUvarint(b, uint64(s.nverts))
		b = binary.AppendUvarint(b, uint64(len(s.parts)))
		for i := range s.parts {
			pt := &s.parts[i]
			rings := len(pt.ringStart) - 1
			b = binary.AppendUvarint(b, uint64(rings))
			for k := range rings {
				b = binary.AppendUvarint(b, uint64(pt.ringStart[k+1]-pt.ringStart[k]))
			}
			for _, x := range pt.xs {
				b = appendFloat(b, x)
			}
			for _, y := range pt.ys {
				b = appendFloat(b, y)
			}
		}
		return b
	}
	panic(fmt.Sprintf("fence: unknown shape type %T", s)) // the Shape set is closed
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// errShapeBinary prefixes DecodeShape's errors.
var errShapeBinary = errors.New("shape binary")

// DecodeShape rebuilds a shape from AppendShape's form.
func DecodeShape(b []byte) (Shape, error) {
	d := shapeDecoder{b: b}
	s, err := d.shape()
	if err == nil && len(d.b) != 0 {
		err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errShapeBinary, err)
	}
	return s, nil
}

type shapeDecoder struct{ b []byte }

func (d *shapeDecoder) uvarint(max uint64) (int, error) {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, errors.New("truncated")
	}
	if n != (bits.Len64(v|1)+6)/7 {
		// An over-long form (0xe2 0x00 for 0x62): one shape has one
		// encoding, so stored bytes compare equal when shapes do.
		return 0, errors.New("count not in its shortest form")
	}
	if v > max {
		return 0, fmt.Errorf("count %d above %d", v, max)
	}
	d.b = d.b[n:]
	return int(v), nil
}

func (d *shapeDecoder) float() (float64, error) {
	if len(d.b) < 8 {
		return 0, errors.New("truncated")
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("coordinate not finite")
	}
	return f, nil
}

func (d *shapeDecoder) shape() (Shape, error) {
	if len(d.b) == 0 {
		return nil, errors.New("empty")
	}
	kind := d.b[0]
	d.b = d.b[1:]
	switch kind {
	case shapeCircle:
		var v [3]float64
		for i := range v {
			f, err := d.float()
			if err != nil {
				return nil, err
			}
			v[i] = f
		}
		return NewCircle(geo.LatLng{Lat: v[0], Lng: v[1]}, v[2])
	case shapePolygon:
		return d.polygon()
	}
	return nil, fmt.Errorf("unknown shape kind %d", kind)
}

func (d *shapeDecoder) polygon() (*Polygon, error) {
	nverts, err := d.uvarint(MaxVertices)
	if err != nil {
		return nil, err
	}
	nparts, err := d.uvarint(MaxVertices / 4)
	if err != nil {
		return nil, err
	}
	if nparts == 0 {
		return nil, errors.New("no parts")
	}
	pg := &Polygon{nverts: nverts, parts: make([]part, nparts)}
	total := 0
	for pi := range pg.parts {
		pt := &pg.parts[pi]
		nrings, err := d.uvarint(MaxVertices / 4)
		if err != nil {
			return nil, err
		}
		if nrings == 0 {
			return nil, fmt.Errorf("part %d has no rings", pi)
		}
		pt.ringStart = make([]int32, nrings+1)
		n := 0
		for k := range nrings {
			l, err := d.uvarint(MaxVertices)
			if err != nil {
				return nil, err
			}
			if l < 4 {
				return nil, fmt.Errorf("part %d, ring %d: %d positions", pi, k, l)
			}
			n += l
			if total+n > MaxVertices {
				return nil, fmt.Errorf("more than %d positions", MaxVertices)
			}
			pt.ringStart[k+1] = int32(n)
		}
		total += n
		if len(d.b) < 16*n {
			return nil, errors.New("truncated")
		}
		pt.xs, pt.ys = make([]float64, n), make([]float64, n)
		for i := range pt.xs {
			if pt.xs[i], err = d.float(); err != nil {
				return nil, err
			}
		}
		for i := range pt.ys {
			if pt.ys[i], err = d.float(); err != nil {
				return nil, err
			}
		}
		if err := pt.rebuild(pi); err != nil {
			return nil, err
		}
		pg.addBound(pi)
	}
	return pg, nil
}

// rebuild checks a decoded part's coordinates and rings and computes its
// box (the exterior's, as buildPart does) and band index.
func (pt *part) rebuild(pi int) error {
	for k := 0; k+1 < len(pt.ringStart); k++ {
		lo, hi := pt.ringStart[k], pt.ringStart[k+1]-1
		if pt.xs[lo] != pt.xs[hi] || pt.ys[lo] != pt.ys[hi] {
			return fmt.Errorf("part %d, ring %d: not closed", pi, k)
		}
	}
	outer := pt.ringStart[1]
	pt.minX, pt.maxX, pt.minY, pt.maxY = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for i := range pt.xs[:outer] {
		pt.minX, pt.maxX = math.Min(pt.minX, pt.xs[i]), math.Max(pt.maxX, pt.xs[i])
		pt.minY, pt.maxY = math.Min(pt.minY, pt.ys[i]), math.Max(pt.maxY, pt.ys[i])
	}
	for i := range pt.xs {
		// Unwrapped longitudes stay within two turns of the exterior's
		// minimum, which is in [-180, 180); latitudes are latitudes.
		if pt.ys[i] < -90 || pt.ys[i] > 90 || pt.xs[i] < -540 || pt.xs[i] > 900 {
			return fmt.Errorf("part %d: position [%v, %v] out of range", pi, pt.xs[i], pt.ys[i])
		}
	}
	if pt.minX < -180 || pt.minX >= 180 || pt.maxX-pt.minX > 360 {
		return fmt.Errorf("part %d: longitudes [%v, %v] not as the encoder leaves them", pi, pt.minX, pt.maxX)
	}
	pt.buildBands()
	return nil
}
