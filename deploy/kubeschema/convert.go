package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Well-known definitions whose OpenAPI form is narrower than what the API
// server accepts.
const (
	intOrStringDef = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
	quantityDef    = "io.k8s.apimachinery.pkg.api.resource.Quantity"
	refPrefix      = "#/definitions/"
)

// schema is one JSON schema object as decoded from the OpenAPI document.
type schema = map[string]any

// gvk is an entry of a definition's x-kubernetes-group-version-kind.
type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// FileName is the name kubeconform looks a kind up by: the lower-case kind,
// the first label of the group (none for the core group) and the version:
// deployment-apps-v1.json, service-v1.json, networkpolicy-networking-v1.json.
func (g gvk) FileName() string {
	name := strings.ToLower(g.Kind)
	if g.Group != "" {
		name += "-" + strings.ToLower(strings.SplitN(g.Group, ".", 2)[0])
	}
	return name + "-" + strings.ToLower(g.Version) + ".json"
}

// Convert turns a Kubernetes OpenAPI v2 document (api/openapi-spec/
// swagger.json) into one strict, self-contained JSON schema per kind, keyed
// by file name.
//
// Each schema is the kind's definition with the definitions it reaches
// (and only those) under "definitions", so "$ref"s resolve inside the file
// and recursive types need no expansion. The conversion follows what
// kubectl's validation and kubeconform's published schemas do:
//
//   - strict: every object schema with properties gets
//     "additionalProperties": false, so a misspelt or misplaced field is an
//     error rather than silently dropped by the API server;
//   - IntOrString accepts a string or an integer (OpenAPI says string with
//     format int-or-string), Quantity a string or a number (cpu: 1);
//   - descriptions and x-kubernetes-* extensions are dropped: they do not
//     validate anything and make the files ten times larger.
func Convert(swagger []byte) (map[string][]byte, error) {
	var doc struct {
		Definitions map[string]schema `json:"definitions"`
	}
	dec := json.NewDecoder(bytes.NewReader(swagger))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode OpenAPI document: %w", err)
	}
	if len(doc.Definitions) == 0 {
		return nil, fmt.Errorf("OpenAPI document has no definitions")
	}

	defs := make(map[string]schema, len(doc.Definitions))
	kinds := map[string][]gvk{}
	for name, def := range doc.Definitions {
		if raw, ok := def["x-kubernetes-group-version-kind"]; ok {
			b, err := json.Marshal(raw)
			if err != nil {
				return nil, err
			}
			var gs []gvk
			if err := json.Unmarshal(b, &gs); err != nil {
				return nil, fmt.Errorf("definition %s: x-kubernetes-group-version-kind: %w", name, err)
			}
			kinds[name] = gs
		}
		switch name {
		case intOrStringDef:
			defs[name] = schema{"oneOf": []any{schema{"type": "string"}, schema{"type": "integer"}}}
		case quantityDef:
			defs[name] = schema{"oneOf": []any{schema{"type": "string"}, schema{"type": "number"}}}
		default:
			defs[name] = strict(def)
		}
	}

	out := map[string][]byte{}
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	sort.Strings(names) // a kind served by two definitions: the first wins, always the same
	for _, name := range names {
		reach := map[string]schema{}
		if err := reachable(defs, defs[name], reach); err != nil {
			return nil, fmt.Errorf("definition %s: %w", name, err)
		}
		root := schema{}
		for k, v := range defs[name] {
			root[k] = v
		}
		root["$schema"] = "http://json-schema.org/draft-04/schema#"
		if len(reach) > 0 {
			root["definitions"] = reach
		}
		b, err := json.Marshal(root)
		if err != nil {
			return nil, fmt.Errorf("encode schema of %s: %w", name, err)
		}
		for _, g := range kinds[name] {
			if _, dup := out[g.FileName()]; !dup {
				out[g.FileName()] = b
			}
		}
	}
	return out, nil
}

// strict returns a copy of s made strict and stripped (see Convert),
// walking the schema keywords of OpenAPI v2 structurally, so a property
// that happens to be named "format" or "properties" is not mistaken for
// the keyword.
func strict(s schema) schema {
	out := schema{}
	for k, v := range s {
		switch {
		case k == "description" || strings.HasPrefix(k, "x-kubernetes-"):
			continue
		case k == "properties":
			props := schema{}
			for name, p := range v.(map[string]any) {
				props[name] = strictAny(p)
			}
			out[k] = props
		case k == "items" || k == "additionalProperties" || k == "not":
			out[k] = strictAny(v)
		case k == "allOf" || k == "anyOf" || k == "oneOf":
			list := v.([]any)
			cp := make([]any, len(list))
			for i, x := range list {
				cp[i] = strictAny(x)
			}
			out[k] = cp
		default:
			out[k] = v
		}
	}
	if out["format"] == "int-or-string" {
		return schema{"oneOf": []any{schema{"type": "string"}, schema{"type": "integer"}}}
	}
	if _, ok := out["properties"]; ok {
		if _, set := out["additionalProperties"]; !set {
			out["additionalProperties"] = false
		}
	}
	return out
}

func strictAny(v any) any {
	if s, ok := v.(map[string]any); ok {
		return strict(s)
	}
	return v // additionalProperties: true/false
}

// reachable adds to into every definition s refers to, transitively.
func reachable(defs map[string]schema, s any, into map[string]schema) error {
	switch s := s.(type) {
	case map[string]any:
		if ref, ok := s["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, refPrefix)
			if !found {
				return fmt.Errorf("unsupported $ref %q", ref)
			}
			def, ok := defs[name]
			if !ok {
				return fmt.Errorf("$ref to a missing definition %q", name)
			}
			if _, seen := into[name]; !seen {
				into[name] = def
				if err := reachable(defs, def, into); err != nil {
					return err
				}
			}
		}
		for k, v := range s {
			if k == "$ref" {
				continue
			}
			if err := reachable(defs, v, into); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range s {
			if err := reachable(defs, v, into); err != nil {
				return err
			}
		}
	}
	return nil
}
