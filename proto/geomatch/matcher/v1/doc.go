// Package matcherv1 holds the Go code generated from the internal API between
// routers and matcher nodes (proto/geomatch/matcher/v1/matcher.proto).
// Regenerate it with `make proto`; do not edit the .pb.go files.
package matcherv1
