package ui

import (
	"testing"

	"github.com/geomatch/geomatch/shardmap"
)

// FuzzParseAction: any body is refused with an error or parsed into an
// action whose ring change can be planned without a panic.
func FuzzParseAction(f *testing.F) {
	cell := testShards(f)[0].String()
	for _, s := range []string{
		`{"action":"move","cell":"` + cell + `","node":"m2"}`,
		`{"action":"drain","node":"m1"}`,
		`{"action":"merge","cell":"` + cell + `"}`,
		`{"action":"split","cell":"8001fffffffffff"}`,
		`{"action":"undrain","node":"m1","epoch":18446744073709551615}`,
		`{"action":"move","cell":"ffffffffffffffff","node":""}`,
		`{`, `null`, `{"action":null}`,
	} {
		f.Add([]byte(s))
	}
	m, err := shardmap.NewMap(shardmap.DefaultDoc(testMembers))
	if err != nil {
		f.Fatal(err)
	}
	shown := map[shardmap.Cell]int64{testShards(f)[0]: 3}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := parseAction(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if a.method == "" || a.rpc == nil || a.change == nil || a.what == "" {
			t.Fatalf("parsed %q into an incomplete action %+v", body, a)
		}
		_, _ = plan(m, a, shown) // refused or planned; never a panic
	})
}
