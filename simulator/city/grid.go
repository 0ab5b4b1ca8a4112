package city

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/geomatch/geomatch/internal/geo"
)

// GridSpec describes a generated grid city: parallel "avenues" along the
// grid's long axis crossed by "streets", every few of them an arterial,
// highways along the two outer avenues, speeds varied per block.
type GridSpec struct {
	// Name names the city.
	Name string
	// Center is the middle of the grid.
	Center geo.LatLng
	// WidthM is the extent across the avenues, LengthM along them (meters).
	WidthM, LengthM float64
	// BearingDeg is the compass bearing of the avenues (0: north-south;
	// Manhattan's avenues run at about 29°).
	BearingDeg float64
	// AvenueSpacingM and StreetSpacingM are the block sides in meters.
	AvenueSpacingM, StreetSpacingM float64
	// ArterialEvery makes every n-th avenue and n-th street an arterial
	// (0: none).
	ArterialAvenueEvery, ArterialStreetEvery int
	// HighwayEdges makes the two outer avenues highways.
	HighwayEdges bool
	// Speeds are the speeds per class; zero takes DefaultSpeeds.
	Speeds Speeds
	// SpeedJitter varies each block's speed by up to ± this fraction
	// (0.2: ±20%), drawn from Seed.
	SpeedJitter float64
	// Seed draws the speed variation.
	Seed uint64
}

// maxGridNodes bounds a generated grid.
const maxGridNodes = 2_000_000

func (s GridSpec) validate() error {
	switch {
	case s.Center.Validate() != nil:
		return fmt.Errorf("grid %s: center: %w", s.Name, s.Center.Validate())
	case math.Abs(s.Center.Lat) > 85:
		return fmt.Errorf("grid %s: center latitude %v is too close to a pole for a planar city (at most 85°)", s.Name, s.Center.Lat)
	case !(s.WidthM > 0 && s.LengthM > 0 && s.WidthM <= 200_000 && s.LengthM <= 200_000):
		return fmt.Errorf("grid %s: extent %v x %v m, want (0, 200 km] each", s.Name, s.WidthM, s.LengthM)
	case !(s.AvenueSpacingM >= 10 && s.StreetSpacingM >= 10):
		return fmt.Errorf("grid %s: block %v x %v m, want at least 10 m", s.Name, s.AvenueSpacingM, s.StreetSpacingM)
	case s.SpeedJitter < 0 || s.SpeedJitter >= 1:
		return fmt.Errorf("grid %s: speed jitter %v, want [0, 1)", s.Name, s.SpeedJitter)
	case s.ArterialAvenueEvery < 0 || s.ArterialStreetEvery < 0:
		return fmt.Errorf("grid %s: arterial spacing must not be negative", s.Name)
	}
	nx := int(s.WidthM/s.AvenueSpacingM) + 1
	ny := int(s.LengthM/s.StreetSpacingM) + 1
	if nx < 2 || ny < 2 {
		return fmt.Errorf("grid %s: %d x %d intersections, want at least 2 x 2", s.Name, nx, ny)
	}
	if nx*ny > maxGridNodes {
		return fmt.Errorf("grid %s: %d intersections, at most %d", s.Name, nx*ny, maxGridNodes)
	}
	return nil
}

// Grid builds the grid city of spec.
func Grid(spec GridSpec) (*Graph, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	speeds := spec.Speeds
	if speeds == (Speeds{}) {
		speeds = DefaultSpeeds()
	}
	for c, v := range speeds {
		if !(v > 0) {
			return nil, fmt.Errorf("grid %s: %s speed %v km/h, want > 0", spec.Name, Class(c), v)
		}
	}
	nx := int(spec.WidthM/spec.AvenueSpacingM) + 1
	ny := int(spec.LengthM/spec.StreetSpacingM) + 1
	b := NewBuilder(spec.Name, NewFrame(spec.Center))
	theta := spec.BearingDeg * math.Pi / 180
	sin, cos := math.Sin(theta), math.Cos(theta)
	w := float64(nx-1) * spec.AvenueSpacingM
	l := float64(ny-1) * spec.StreetSpacingM
	id := func(i, j int) NodeID { return NodeID(j*nx + i) }
	for j := 0; j < ny; j++ {
		for i := 0; i < nx; i++ {
			// Grid coordinates: gx across the avenues, gy along them.
			gx := float64(i)*spec.AvenueSpacingM - w/2
			gy := float64(j)*spec.StreetSpacingM - l/2
			// The avenue direction (0, 1) maps to the bearing (sin, cos).
			b.AddNode(gx*cos+gy*sin, -gx*sin+gy*cos)
		}
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x63697479)) // "city"
	speed := func(c Class) float64 {
		return speeds[c] * (1 + spec.SpeedJitter*(2*rng.Float64()-1))
	}
	avenueClass := func(i int) Class {
		switch {
		case spec.HighwayEdges && (i == 0 || i == nx-1):
			return Highway
		case spec.ArterialAvenueEvery > 0 && i%spec.ArterialAvenueEvery == 0:
			return Arterial
		}
		return Street
	}
	streetClass := func(j int) Class {
		if spec.ArterialStreetEvery > 0 && j%spec.ArterialStreetEvery == 0 {
			return Arterial
		}
		return Street
	}
	var errs []error
	for j := 0; j < ny; j++ {
		for i := 0; i < nx; i++ {
			if j+1 < ny {
				c := avenueClass(i)
				errs = append(errs, b.AddRoad(id(i, j), id(i, j+1), c, speed(c), false))
			}
			if i+1 < nx {
				c := streetClass(j)
				errs = append(errs, b.AddRoad(id(i, j), id(i+1, j), c, speed(c), false))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("grid %s: %w", spec.Name, err)
	}
	g, _, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("grid %s: %w", spec.Name, err)
	}
	return g, nil
}
