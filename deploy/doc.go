// Package deploy holds geomatch's deployment files and the tests that keep
// them true to the binary:
//
//   - Dockerfile builds the one geomatch binary into a distroless image;
//   - docker-compose.yml is a whole cluster on one Docker host: Consul,
//     Redis, three matchers and a router;
//   - kubernetes/ has the manifests (router Deployment, matcher
//     StatefulSet with its headless Service and PodDisruptionBudget,
//     ConfigMaps, NetworkPolicies), applied with kustomize;
//   - README.md is the runbook: start, scale, drain, upgrade, restore after
//     a Consul loss, and what an operator must supply.
//
// The package has no code of its own, only tests. TestComposeTopology
// runs the compose file's geomatch services as processes, with exactly the
// commands and environments the file gives them, against a real Consul and
// Redis (internal/consultest, internal/redistest), service hostnames mapped
// to loopback addresses, and checks that the cluster serves.
// TestKubernetesManifests checks that every flag and GEOMATCH_* variable the
// manifests hand the binary exists, and that ports, probes and grace
// periods agree with the flags. The schemas of the manifests and of the
// compose file are checked by scripts/validate-deploy.sh (make
// validate-deploy) with deploy/kubeschema and kubeconform.
package deploy
