package chaos

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzCheck: any history read from JSON lines checks without a panic,
// and twice to the same result.
func FuzzCheck(f *testing.F) {
	var seed bytes.Buffer
	enc := json.NewEncoder(&seed)
	for _, op := range cleanHistory() {
		_ = enc.Encode(op)
	}
	f.Add(seed.Bytes())
	f.Add([]byte(`{"kind":"nearby","outcome":"ok","results":[{"d":"x","ts":1}],"radius_m":1e308,"lat":91}` + "\n"))
	f.Add([]byte(`{"kind":"update","driver":"x","lat":-1e308,"lng":1e308,"outcome":"ok"}` + "\n" + `{"kind":"nearby","outcome":"ok","radius_m":1e300}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := ReadHistory(bytes.NewReader(data))
		if err != nil {
			return
		}
		a, b := Check(ops, CheckConfig{}), Check(ops, CheckConfig{})
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("two checks of one history differ:\n%s\n%s", ja, jb)
		}
	})
}
