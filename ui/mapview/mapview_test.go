package mapview

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"
)

// TestOwnerColorsAreDistinct: 64 owners (the most a dev cluster has), 64
// colours.
func TestOwnerColorsAreDistinct(t *testing.T) {
	seen := map[string]int{}
	for i := range 64 {
		c := OwnerColor(i)
		if len(c) != 7 || c[0] != '#' {
			t.Fatalf("colour %d is %q", i, c)
		}
		if j, ok := seen[c]; ok {
			t.Fatalf("owners %d and %d share %s", j, i, c)
		}
		seen[c] = i
	}
}

// TestBoundary: six vertices around the cell's centre, rounded; an
// invalid cell is an error.
func TestBoundary(t *testing.T) {
	c := h3.LatLngToCell(h3.NewLatLng(40.758, -73.9855), 7)
	b, err := Boundary(c)
	if err != nil || len(b) != 6 {
		t.Fatalf("%v, %v", b, err)
	}
	for _, v := range b {
		if v[0] != Round(v[0]) || v[0] < 40.7 || v[0] > 40.8 || v[1] < -74.05 || v[1] > -73.9 {
			t.Fatalf("vertex %v", v)
		}
	}
	if _, err := Boundary(h3.Cell(42)); err == nil {
		t.Fatal("an invalid cell has a boundary")
	}
}

// TestEmbed: a self-contained fragment whose document cannot end its
// script element, and ids checked.
func TestEmbed(t *testing.T) {
	s := &Snapshot{Version: Version, Note: "</script><script>alert(1)</script>", Nodes: []Node{{ID: "m1", Color: OwnerColor(0)}}}
	h, err := Embed("city-map", s)
	if err != nil {
		t.Fatal(err)
	}
	page := string(h)
	if strings.Count(page, "</script>") != 3 || !strings.Contains(page, `\u003c/script\u003e`) {
		t.Fatalf("the document can end its script element:\n%s", page[:200])
	}
	i := strings.Index(page, `id="city-map-doc">`) + len(`id="city-map-doc">`)
	var back Snapshot
	if err := json.Unmarshal([]byte(page[i:i+strings.Index(page[i:], "</script>")]), &back); err != nil || back.Note != s.Note {
		t.Fatalf("embedded document: %v, %+v", err, back)
	}
	for _, id := range []string{"", `x" onload="`, "a b"} {
		if _, err := Embed(id, s); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	if strings.Contains(Script(), "</script") {
		t.Fatal("the renderer contains </script")
	}
}
