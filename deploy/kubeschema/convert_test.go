package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A small OpenAPI document with the shapes the real one has: a kind with
// a group, a core kind, a recursive type, IntOrString, Quantity, a map and
// a property named like a schema keyword.
const swagger = `{
  "swagger": "2.0",
  "definitions": {
    "io.k8s.api.apps.v1.Thing": {
      "description": "a thing",
      "type": "object",
      "required": ["spec"],
      "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.ThingSpec"}
      },
      "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Thing", "version": "v1"}]
    },
    "io.k8s.api.apps.v1.ThingSpec": {
      "type": "object",
      "properties": {
        "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
        "cpu": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "format": {"type": "string", "description": "a property named format"},
        "inline": {"type": "string", "format": "int-or-string"},
        "children": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.apps.v1.ThingSpec"}}
      },
      "x-kubernetes-map-type": "atomic"
    },
    "io.k8s.api.core.v1.Other": {
      "type": "object",
      "properties": {"name": {"type": "string"}},
      "x-kubernetes-group-version-kind": [{"group": "", "kind": "Other", "version": "v1"}, {"group": "networking.k8s.io", "kind": "Other", "version": "v1beta1"}]
    },
    "io.k8s.api.core.v1.Unused": {"type": "object", "properties": {"x": {"type": "string"}}},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"}
  }
}`

func TestConvertNamesFilesAsKubeconformLooksThemUp(t *testing.T) {
	files, err := Convert([]byte(swagger))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	want := map[string]bool{"thing-apps-v1.json": true, "other-v1.json": true, "other-networking-v1beta1.json": true}
	if len(files) != len(want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for n := range want {
		if files[n] == nil {
			t.Errorf("missing %s (have %v)", n, names)
		}
	}
}

func TestConvertIsStrictSelfContainedAndStripped(t *testing.T) {
	files, err := Convert([]byte(swagger))
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(files["thing-apps-v1.json"], &root); err != nil {
		t.Fatal(err)
	}
	if root["additionalProperties"] != false {
		t.Errorf("root additionalProperties = %v, want false", root["additionalProperties"])
	}
	if _, ok := root["description"]; ok {
		t.Error("description kept")
	}
	if _, ok := root["x-kubernetes-group-version-kind"]; ok {
		t.Error("x-kubernetes extension kept")
	}
	defs := root["definitions"].(map[string]any)
	if _, ok := defs["io.k8s.api.core.v1.Unused"]; ok {
		t.Error("a definition the kind does not reach is included")
	}
	spec := defs["io.k8s.api.apps.v1.ThingSpec"].(map[string]any)
	if spec["additionalProperties"] != false {
		t.Error("nested object not strict")
	}
	props := spec["properties"].(map[string]any)
	if got := props["labels"].(map[string]any)["additionalProperties"]; !reflect.DeepEqual(got, map[string]any{"type": "string"}) {
		t.Errorf("map values schema changed: %v", got)
	}
	if got := props["format"]; !reflect.DeepEqual(got, map[string]any{"type": "string"}) {
		t.Errorf("property named format: %v", got)
	}
	intOrString := map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	if got := props["inline"]; !reflect.DeepEqual(got, intOrString) {
		t.Errorf("inline int-or-string: %v", got)
	}
	if got := defs[intOrStringDef]; !reflect.DeepEqual(got, intOrString) {
		t.Errorf("IntOrString: %v", got)
	}
	quantity := map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	if got := defs[quantityDef]; !reflect.DeepEqual(got, quantity) {
		t.Errorf("Quantity: %v", got)
	}
}

func TestConvertRejectsDanglingRefs(t *testing.T) {
	doc := `{"definitions": {"a": {"$ref": "#/definitions/missing", "x-kubernetes-group-version-kind": [{"group": "", "kind": "A", "version": "v1"}]}}}`
	if _, err := Convert([]byte(doc)); err == nil {
		t.Fatal("no error for a $ref to a missing definition")
	}
	if _, err := Convert([]byte(`{"definitions": {}}`)); err == nil {
		t.Fatal("no error for a document without definitions")
	}
}
