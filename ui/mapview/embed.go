package mapview

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
)

// Assets holds the renderer: assets/map.js (the GeomatchMap global) and
// assets/map.css. The live map serves them; Embed inlines them.
//
//go:embed assets/map.js assets/map.css
var Assets embed.FS

// Script returns the renderer's JavaScript.
func Script() string { return mustRead("assets/map.js") }

// Style returns the renderer's CSS.
func Style() string { return mustRead("assets/map.css") }

func mustRead(name string) string {
	b, err := Assets.ReadFile(name)
	if err != nil {
		panic("mapview: embedded asset missing: " + name) // the embed directive guarantees it
	}
	return string(b)
}

// Embed returns an HTML fragment that draws s with the renderer inlined: a
// self-contained map for a static page (the simulator's report), with no
// request to anywhere. id names the map's container; it must be unique in
// the page and consist of letters, digits and dashes.
func Embed(id string, s *Snapshot) (template.HTML, error) {
	for _, r := range id {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "", fmt.Errorf("embed map: id %q: only letters, digits and dashes", id)
		}
	}
	if id == "" {
		return "", fmt.Errorf("embed map: id is empty")
	}
	// encoding/json escapes <, > and & as \u003c..., so the document
	// cannot end the script element it sits in.
	doc, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("embed map: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<style>%s</style>\n", Style())
	fmt.Fprintf(&b, `<div class="gm-map-static" id="%s"></div>`+"\n", id)
	fmt.Fprintf(&b, `<script type="application/json" id="%s-doc">%s</script>`+"\n", id, doc)
	fmt.Fprintf(&b, "<script>%s</script>\n", Script())
	fmt.Fprintf(&b, `<script>GeomatchMap.create(document.getElementById(%q), {}).update(JSON.parse(document.getElementById(%q).textContent));</script>`+"\n", id, id+"-doc")
	return template.HTML(b.String()), nil // built from the embedded assets and escaped JSON
}
