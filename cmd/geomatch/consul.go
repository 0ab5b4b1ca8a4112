package main

import (
	"flag"

	"github.com/geomatch/geomatch/membership"
)

// consulFlags locate the cluster's membership in Consul.
type consulFlags struct {
	addr    string
	token   string
	prefix  string
	service string
	ca      string
	cert    string
	key     string
}

func (c *consulFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "consul", "", "Consul HTTP address (host:port): membership and the ring live there; without it, --peers gives a static cluster")
	fs.StringVar(&c.token, "consul-token", "", "Consul ACL token")
	fs.StringVar(&c.prefix, "consul-prefix", "geomatch", "Consul KV folder of this cluster (ring, settings, writer lock)")
	fs.StringVar(&c.service, "consul-service", "geomatch-matcher", "Consul service name of this cluster's matchers")
	fs.StringVar(&c.ca, "consul-ca", "", "PEM CA bundle of Consul's HTTPS certificate; turns HTTPS on")
	fs.StringVar(&c.cert, "consul-cert", "", "PEM client certificate for Consul (verify_incoming); with --consul-key")
	fs.StringVar(&c.key, "consul-key", "", "PEM private key of --consul-cert")
}

func (c *consulFlags) config() membership.ConsulConfig {
	return membership.ConsulConfig{Addr: c.addr, Token: c.token, Prefix: c.prefix, Service: c.service,
		CAFile: c.ca, CertFile: c.cert, KeyFile: c.key}
}

// args passes the Consul TLS flags that were set on to another command.
func (c *consulFlags) tlsArgs() []string {
	var a []string
	for _, f := range [][2]string{{"--consul-ca", c.ca}, {"--consul-cert", c.cert}, {"--consul-key", c.key}} {
		if f[1] != "" {
			a = append(a, f[0], f[1])
		}
	}
	return a
}
