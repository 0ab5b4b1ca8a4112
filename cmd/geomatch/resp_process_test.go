package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDevRESPProcess: geomatch dev --resp-listen prints the RESP door's
// address, which answers go-redis, and stops cleanly with it.
func TestDevRESPProcess(t *testing.T) {
	p := start(t, "geomatch dev", "dev", "--listen", "127.0.0.1:0", "--resp-listen", "127.0.0.1:0", "--matchers", "2", "--metrics", "")
	m := p.waitFor(regexp.MustCompile(`geomatch dev: RESP \(Tile38/Redis GEO\) on (127\.0\.0\.1:(\d+)) — redis-cli -p (\d+)`), 20*time.Second)
	if m[2] != m[3] {
		t.Errorf("printed port %s, redis-cli -p %s", m[2], m[3])
	}
	c := redis.NewClient(&redis.Options{Addr: m[1], Protocol: 2, DisableIdentity: true})
	defer c.Close()
	ctx := ctxFor(t, 10*time.Second)
	if err := c.Do(ctx, "SET", "fleet", "cab-1", "POINT", 40.75, -73.98).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	ids, err := c.GeoSearch(ctx, "fleet", &redis.GeoSearchQuery{Longitude: -73.98, Latitude: 40.75, Radius: 1, RadiusUnit: "km", Sort: "ASC", Count: 5}).Result()
	if err != nil || len(ids) != 1 || ids[0] != "cab-1" {
		t.Fatalf("GEOSEARCH: %v, %v", ids, err)
	}
	p.stop(15 * time.Second)
	p.waitFor(regexp.MustCompile(`geomatch dev: stopped`), time.Second)
}
