package shardmap

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"
)

// testDoc returns a document using every field.
func testDoc() Doc {
	c7 := h3.LatLngToCell(toH3(nyc), 7)
	d := DefaultDoc(members(4))
	d.Epoch = 42
	d.Members[1].Weight = 2
	d.Splits = []Cell{c7, c7.Children(8)[2]}
	d.Pins = map[Cell]string{
		c7.GridDisk(1)[1]:                "m03",
		c7.Children(8)[2].Children(9)[5]: "m00",
		c7.Children(8)[0]:                "m01",
	}
	d.Drained = []string{"m02"}
	return d
}

func TestDefaultDoc(t *testing.T) {
	ms := members(3)
	d := DefaultDoc(ms)
	if d.Epoch != 1 || d.ShardRes != DefaultShardRes || d.MaxSplitDepth != DefaultMaxSplitDepth || d.VNodes != DefaultVNodes {
		t.Fatalf("DefaultDoc = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("DefaultDoc does not validate: %v", err)
	}
	ms[0].ID = "changed"
	if d.Members[0].ID == "changed" {
		t.Fatalf("DefaultDoc shares the caller's member slice")
	}
}

func TestDocJSONRoundTrip(t *testing.T) {
	for _, d := range []Doc{testDoc(), DefaultDoc(members(2)), DefaultDoc(nil)} {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var back Doc
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !reflect.DeepEqual(back, d) {
			t.Fatalf("round trip changed the document:\n got %+v\nwant %+v\njson %s", back, d, b)
		}
	}
	// The wire form: snake_case names, cells as H3 hex strings.
	b, _ := json.Marshal(testDoc())
	for _, want := range []string{`"epoch":42`, `"shard_res":7`, `"max_split_depth":2`, `"vnodes":128`,
		`"splits":["` + h3.LatLngToCell(toH3(nyc), 7).String(), `"pins":{"`, `"drained":["m02"]`, `"id":"m01"`, `"weight":2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var d Doc
	if err := json.Unmarshal([]byte(`{"epoch":1,"splits":["not-a-cell"]}`), &d); err == nil {
		t.Errorf("Unmarshal accepted an invalid split cell")
	}
}

func TestDocValidate(t *testing.T) {
	c7 := h3.LatLngToCell(toH3(nyc), 7)
	tests := []struct {
		name    string
		edit    func(d *Doc)
		wantErr string // "" means valid
	}{
		{"every field used", func(d *Doc) {}, ""},
		{"no members", func(d *Doc) { d.Members, d.Pins, d.Drained = nil, nil, nil }, ""},
		{"everyone drained", func(d *Doc) { d.Pins = nil; d.Drained = []string{"m00", "m01", "m02", "m03"} }, ""},
		{"epoch 0", func(d *Doc) { d.Epoch = 0 }, "epoch must be at least 1"},
		{"bad shard resolution", func(d *Doc) { d.ShardRes = 16 }, "shard resolution 16"},
		{"bad split depth", func(d *Doc) { d.MaxSplitDepth = 4 }, "max split depth 4"},
		{"split not at a split resolution", func(d *Doc) { d.Splits = append(d.Splits, c7.Parent(5)) }, "split cell " + c7.Parent(5).String()},
		{"nested split without its parent", func(d *Doc) { d.Splits = d.Splits[1:] }, "its parent " + c7.String() + " is not split"},
		{"zero vnodes", func(d *Doc) { d.VNodes = 0 }, "vnodes per member 0"},
		{"duplicate member", func(d *Doc) { d.Members = append(d.Members, Member{ID: "m01"}) }, `member "m01": duplicate id`},
		{"negative weight", func(d *Doc) { d.Members[3].Weight = -2 }, `member "m03": weight -2`},
		{"drained stranger", func(d *Doc) { d.Drained = append(d.Drained, "x") }, `drained member "x": not a member`},
		{"drained twice", func(d *Doc) { d.Drained = append(d.Drained, "m02") }, `drained member "m02": listed twice`},
		{"pin to a stranger", func(d *Doc) { d.Pins[c7.GridDisk(1)[1]] = "x" }, `"x": not a member`},
		{"pin to a drained member", func(d *Doc) { d.Pins[c7.GridDisk(1)[1]] = "m02" }, `"m02": the member is drained`},
		{"pin of a split cell", func(d *Doc) { d.Pins[c7] = "m00" }, "is not a shard"},
		{"pin of a cell of another resolution", func(d *Doc) { d.Pins[c7.GridDisk(1)[1].Children(8)[0]] = "m00" }, "is not a shard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDoc()
			tt.edit(&d)
			err := d.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
			if _, mErr := NewMap(d); (mErr == nil) != (err == nil) {
				t.Fatalf("NewMap error %v disagrees with Validate %v", mErr, err)
			}
		})
	}
}

func TestDocClone(t *testing.T) {
	d := testDoc()
	c := d.Clone()
	c.Members[0].ID = "x"
	c.Splits[0] = 0
	c.Drained[0] = "x"
	for k := range c.Pins {
		c.Pins[k] = "x"
	}
	if !reflect.DeepEqual(d, testDoc()) {
		t.Fatalf("changing a clone changed the original")
	}
}

// FuzzDocJSON feeds arbitrary JSON to the document decoder and validator:
// neither may panic, and a valid document must survive a round trip.
func FuzzDocJSON(f *testing.F) {
	b, _ := json.Marshal(testDoc())
	f.Add(b)
	f.Add([]byte(`{"epoch":1,"shard_res":7,"max_split_depth":2,"vnodes":128,"members":[{"id":"a"}]}`))
	f.Add([]byte(`{"epoch":1,"shard_res":15,"max_split_depth":3,"vnodes":4096,"members":[{"id":"a","weight":1000}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Doc
		if json.Unmarshal(data, &d) != nil {
			return
		}
		m, err := NewMap(d)
		if err != nil {
			return
		}
		out, err := json.Marshal(m.Doc())
		if err != nil {
			t.Fatalf("Marshal of a valid doc: %v", err)
		}
		var back Doc
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", out, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("round trip of a valid doc does not validate: %v", err)
		}
	})
}
