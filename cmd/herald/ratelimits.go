package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"

	"github.com/heraldhq/herald/gateway"
)

// rateLimitConfig is the HTTP API's rate limiting (see docs/operations.md).
type rateLimitConfig struct {
	Enabled        bool
	Specs          []string
	TrustedProxies []string
}

func rateLimitFlags(fs *pflag.FlagSet, c *rateLimitConfig) {
	fs.BoolVar(&c.Enabled, "rate-limits-enabled", true, "limit requests per API key, per client address and failed authentications per address (per replica)")
	fs.StringSliceVar(&c.Specs, "rate-limits", nil, `changes to the default limits, e.g. "key.submit=20/s:40,addr.read=1000/s,<org id>/key.import=10/m,auth.failures=5/m:10" (0/s turns one off)`)
	fs.StringSliceVar(&c.TrustedProxies, "trusted-proxies", nil, "CIDRs of load balancers whose X-Forwarded-For names the client address (default: none, the TCP peer is the client)")
}

// limits builds the gateway's limits; nil when disabled.
func (c rateLimitConfig) limits() (*gateway.RateLimits, error) {
	if !c.Enabled {
		return nil, nil
	}
	rl, err := gateway.ParseRateLimits(gateway.DefaultRateLimits(), c.Specs)
	if err != nil {
		return nil, fmt.Errorf("--rate-limits: %w", err)
	}
	for _, p := range c.TrustedProxies {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies %q: want a CIDR such as 10.0.0.0/8", p)
			}
			prefix = netip.PrefixFrom(a, a.BitLen())
		}
		rl.TrustedProxies = append(rl.TrustedProxies, prefix)
	}
	return &rl, nil
}
