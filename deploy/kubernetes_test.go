package deploy

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The parts of Kubernetes objects the test checks (the schemas are
// scripts/validate-deploy.sh's job).

type meta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type workload struct {
	Kind     string `yaml:"kind"`
	Metadata meta   `yaml:"metadata"`
	Spec     struct {
		ServiceName string        `yaml:"serviceName"`
		Selector    labelSelector `yaml:"selector"`
		Template    struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64      `yaml:"terminationGracePeriodSeconds"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef *struct {
				Name string `yaml:"name"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int64 `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type service struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name       string `yaml:"name"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type disruptionBudget struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		MaxUnavailable *int          `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

// manifests are the objects of deploy/kubernetes, by kind.
type manifests struct {
	workloads  []workload
	services   []service
	budgets    []disruptionBudget
	configMaps map[string]map[string]string
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/: %v", err)
	}
	m := manifests{configMaps: map[string]map[string]string{}}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var head struct {
				Kind     string            `yaml:"kind"`
				Metadata meta              `yaml:"metadata"`
				Data     map[string]string `yaml:"data"`
			}
			decode := func(v any) {
				if err := doc.Decode(v); err != nil {
					t.Fatalf("%s: %s: %v", f, head.Kind, err)
				}
			}
			decode(&head)
			switch head.Kind {
			case "Deployment", "StatefulSet":
				var w workload
				decode(&w)
				m.workloads = append(m.workloads, w)
			case "Service":
				var s service
				decode(&s)
				m.services = append(m.services, s)
			case "PodDisruptionBudget":
				var p disruptionBudget
				decode(&p)
				m.budgets = append(m.budgets, p)
			case "ConfigMap":
				m.configMaps[head.Metadata.Name] = head.Data
			}
		}
	}
	return m
}

// flagsOf returns the flags and environment twins a command's usage
// lists: "--listen  [GEOMATCH_LISTEN]" → listen, GEOMATCH_LISTEN.
func flagsOf(t *testing.T, command string) (flags, envs map[string]bool) {
	flags, envs = map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`--([a-z0-9-]+)(?: \S+)?\s+\[(GEOMATCH_[A-Z0-9_]+)\]`).FindAllStringSubmatch(usage(t, command), -1) {
		flags[m[1]], envs[m[2]] = true, true
	}
	if len(flags) == 0 {
		t.Fatalf("geomatch %s --help lists no flags", command)
	}
	return flags, envs
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestKubernetesManifests checks that the manifests and the binary agree:
// every flag and GEOMATCH_* variable given to a geomatch container exists
// in its command; the ports the flags open are the containers' named
// ports, which the probes and Services use; the readiness probe is
// /readyz on the metrics port; a matcher's id is its pod name and its
// advertised address its DNS name through the StatefulSet's headless
// Service, on its gRPC port; grace periods cover the drains; the matcher
// PodDisruptionBudget allows one matcher down; and every Secret the
// manifests use is named in the runbook's list of what to supply.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	commands := map[string]bool{}
	for _, w := range m.workloads {
		pod := w.Spec.Template.Spec
		name := w.Kind + " " + w.Metadata.Name
		if !isSubset(w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: selector %v does not select its pods %v", name, w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels)
		}
		secrets := map[string]bool{}
		for _, v := range pod.Volumes {
			if v.Secret != nil {
				secrets[v.Secret.SecretName] = true
			}
		}
		for _, c := range pod.Containers {
			if c.Image != "geomatch" {
				t.Errorf("%s: container %s: image %q, want geomatch (kustomization.yaml sets the registry and tag)", name, c.Name, c.Image)
				continue
			}
			if len(c.Args) == 0 {
				t.Errorf("%s: container %s: no command in args", name, c.Name)
				continue
			}
			cmd := c.Args[0]
			commands[cmd] = true
			flags, twins := flagsOf(t, cmd)
			where := name + ": geomatch " + cmd

			// Flags and environment, as the binary would see them.
			given := map[string]string{}
			for _, a := range c.Args[1:] {
				f, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
				if !strings.HasPrefix(a, "--") || !ok {
					t.Errorf("%s: argument %q: give flags as --name=value", where, a)
					continue
				}
				if !flags[f] {
					t.Errorf("%s: no flag --%s", where, f)
				}
				given["GEOMATCH_"+strings.ToUpper(strings.ReplaceAll(f, "-", "_"))] = v
			}
			env := map[string]string{}
			for _, from := range c.EnvFrom {
				switch {
				case from.ConfigMapRef != nil:
					data, ok := m.configMaps[from.ConfigMapRef.Name]
					if !ok {
						t.Errorf("%s: envFrom ConfigMap %s is not in the manifests", where, from.ConfigMapRef.Name)
					}
					maps.Copy(env, data)
				case from.SecretRef != nil:
					secrets[from.SecretRef.Name] = true
				}
			}
			for _, e := range c.Env {
				for _, ref := range envRef.FindAllStringSubmatch(e.Value, -1) {
					if _, ok := env[ref[1]]; !ok {
						t.Errorf("%s: %s refers to $(%s), which is not set before it", where, e.Name, ref[1])
					}
				}
				env[e.Name] = e.Value
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					secrets[e.ValueFrom.SecretKeyRef.Name] = true
				}
				if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
					if _, ok := m.configMaps[e.ValueFrom.ConfigMapKeyRef.Name]; !ok {
						t.Errorf("%s: %s: ConfigMap %s is not in the manifests", where, e.Name, e.ValueFrom.ConfigMapKeyRef.Name)
					}
				}
			}
			for k := range env {
				if strings.HasPrefix(k, "GEOMATCH_") && !twins[k] {
					t.Errorf("%s: %s is no flag's environment twin", where, k)
				}
			}
			for k, v := range given {
				if _, dup := env[k]; dup {
					t.Errorf("%s: %s is given as a flag and in the environment", where, k)
				}
				env[k] = v
			}

			// Files named by the environment live on mounted volumes.
			for k, v := range env {
				if !strings.HasPrefix(v, "/") || !strings.HasPrefix(k, "GEOMATCH_") {
					continue
				}
				mounted := false
				for _, vm := range c.VolumeMounts {
					mounted = mounted || strings.HasPrefix(v, strings.TrimSuffix(vm.MountPath, "/")+"/")
				}
				if !mounted {
					t.Errorf("%s: %s=%s is on no mounted volume", where, k, v)
				}
			}

			// Ports: what the flags listen on is what the container and
			// the probes declare.
			ports := map[string]int{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			for flag, portName := range map[string]string{"GEOMATCH_LISTEN": "grpc", "GEOMATCH_METRICS": "metrics"} {
				_, port, err := net.SplitHostPort(env[flag])
				if err != nil {
					t.Errorf("%s: %s=%q: %v", where, flag, env[flag], err)
					continue
				}
				if strconv.Itoa(ports[portName]) != port {
					t.Errorf("%s: %s=%s, but the container port named %s is %d", where, flag, env[flag], portName, ports[portName])
				}
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "metrics" {
				t.Errorf("%s: the readiness probe must be GET /readyz on the metrics port", where)
			}
			for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				if p == nil || p.HTTPGet == nil {
					continue
				}
				if _, ok := ports[p.HTTPGet.Port]; !ok {
					t.Errorf("%s: a probe uses port %q, which the container does not name", where, p.HTTPGet.Port)
				}
				if p.HTTPGet.Path != "/readyz" && p.HTTPGet.Path != "/healthz" {
					t.Errorf("%s: a probe gets %s; the metrics listener serves /readyz and /healthz", where, p.HTTPGet.Path)
				}
			}

			// Stopping: the grace period covers the drains.
			grace := time.Duration(30) * time.Second // Kubernetes' default
			if pod.TerminationGracePeriodSeconds != nil {
				grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
			}
			need := 5 * time.Second // the gRPC drain of open calls and streams
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
				need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}

			switch cmd {
			case "matcher":
				if w.Kind != "StatefulSet" {
					t.Errorf("%s: matchers need stable names: run them in a StatefulSet", where)
				}
				podName := false
				for _, e := range c.Env {
					podName = podName || (e.Name == "GEOMATCH_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
				}
				if !podName {
					t.Errorf("%s: GEOMATCH_ID must be the pod name (fieldRef metadata.name)", where)
				}
				advertise := env["GEOMATCH_ADVERTISE"]
				if !strings.HasPrefix(advertise, "$(GEOMATCH_ID)."+w.Spec.ServiceName+".") || !strings.HasSuffix(advertise, ":"+strconv.Itoa(ports["grpc"])) {
					t.Errorf("%s: GEOMATCH_ADVERTISE=%q, want $(GEOMATCH_ID).%s.…:%d (the pod's DNS name and gRPC port)", where, advertise, w.Spec.ServiceName, ports["grpc"])
				}
				drain := 15 * time.Second
				if v, ok := env["GEOMATCH_DRAIN_TIMEOUT"]; ok {
					if drain, err = time.ParseDuration(v); err != nil {
						t.Errorf("%s: GEOMATCH_DRAIN_TIMEOUT: %v", where, err)
					}
				}
				need += drain
				if need < 30*time.Second {
					need = 30 * time.Second
				}
			case "router":
				if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
					t.Errorf("%s: no preStop: a stopping router would take calls until every endpoint list forgets it", where)
				}
			}
			if grace < need {
				t.Errorf("%s: terminationGracePeriodSeconds %v, want at least %v", where, grace, need)
			}
		}
		for s := range secrets {
			if !bytes.Contains(readme, []byte("`"+s+"`")) {
				t.Errorf("%s uses the Secret %s, which README.md does not list for operators to supply", name, s)
			}
		}
	}
	if !commands["router"] || !commands["matcher"] {
		t.Errorf("commands run: %v, want router and matcher", commands)
	}

	// Services and budgets select the pods they are for, by ports that
	// exist.
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			continue // ExternalName
		}
		var target *workload
		for i, w := range m.workloads {
			if isSubset(s.Spec.Selector, w.Spec.Template.Metadata.Labels) {
				target = &m.workloads[i]
			}
		}
		if target == nil {
			t.Errorf("Service %s selects no pods", s.Metadata.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			found := false
			for _, c := range target.Spec.Template.Spec.Containers {
				for _, cp := range c.Ports {
					found = found || cp.Name == p.TargetPort || strconv.Itoa(cp.ContainerPort) == p.TargetPort
				}
			}
			if !found {
				t.Errorf("Service %s: port %s targets %q, which %s does not expose", s.Metadata.Name, p.Name, p.TargetPort, target.Metadata.Name)
			}
		}
	}
	for _, w := range m.workloads {
		if w.Kind != "StatefulSet" {
			continue
		}
		headless := false
		for _, s := range m.services {
			headless = headless || (s.Metadata.Name == w.Spec.ServiceName && s.Spec.ClusterIP == "None")
		}
		if !headless {
			t.Errorf("StatefulSet %s: serviceName %q is not a headless Service of the manifests", w.Metadata.Name, w.Spec.ServiceName)
		}
		budget := false
		for _, b := range m.budgets {
			if isSubset(b.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) {
				budget = true
				if b.Spec.MaxUnavailable == nil || *b.Spec.MaxUnavailable != 1 {
					t.Errorf("PodDisruptionBudget %s: want maxUnavailable 1", b.Metadata.Name)
				}
			}
		}
		if !budget {
			t.Errorf("StatefulSet %s has no PodDisruptionBudget", w.Metadata.Name)
		}
	}
}

func isSubset(sub, of map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}
