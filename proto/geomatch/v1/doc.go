// Package geomatchv1 holds the Go code generated from the public gRPC API
// (proto/geomatch/v1/*.proto): DriverService, RiderService and AdminService.
// Regenerate it with `make proto`; do not edit the .pb.go files.
package geomatchv1
