// Command kubeschema writes the JSON schemas kubeconform validates
// Kubernetes manifests against, from the OpenAPI document that ships in
// the Kubernetes source (api/openapi-spec/swagger.json in the
// k8s.io/kubernetes module), so manifests are validated without a network:
//
//	go run ./deploy/kubeschema -swagger $K8S/api/openapi-spec/swagger.json -out $DIR/v1.37.2-standalone-strict
//	kubeconform -strict -schema-location $DIR -kubernetes-version 1.37.2 deploy/kubernetes/*.yaml
//
// The output directory is laid out as kubeconform's default schema
// location expects: one self-contained, strict schema per kind
// (deployment-apps-v1.json, service-v1.json, ...). scripts/validate-deploy.sh
// runs both steps.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	swagger := flag.String("swagger", "", "Kubernetes OpenAPI v2 document (api/openapi-spec/swagger.json)")
	out := flag.String("out", "", "directory to write one JSON schema per kind into (created)")
	flag.Parse()
	if err := run(*swagger, *out); err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
}

func run(swagger, out string) error {
	if swagger == "" || out == "" {
		return fmt.Errorf("-swagger and -out are required")
	}
	doc, err := os.ReadFile(swagger)
	if err != nil {
		return err
	}
	files, err := Convert(doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("kubeschema: %d schemas in %s\n", len(files), out)
	return nil
}
