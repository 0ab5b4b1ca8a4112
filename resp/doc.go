// Package resp is the RESP front door of a router: a subset of Tile38's
// protocol and of Redis GEO served on its own port (geomatch router
// --resp-listen), so that redis-cli, go-redis and Tile38 client libraries
// work against geomatch unchanged.
//
// It is a front door like the gRPC API and goes through the same router
// (router.Router's seam in router/resp_seam.go): the same fleet client
// (searches shard, fail over and are exact across shard and node borders),
// the same validation, the same bearer tokens (AUTH token) and access
// rules, and the same per-client limits, which also hold with
// authentication off (by client address).
//
// Commands:
//
//	PING [message]                  PONG (or the message)
//	AUTH [username] token           authenticate with a bearer token
//	OUTPUT [json|resp]              Tile38's reply format of the connection
//	QUIT                            close the connection
//	SET key id POINT lat lon [z]    a location update of driver id
//	NEARBY key [CURSOR n] [LIMIT n] [DISTANCE] [NOFIELDS]
//	       [COUNT|IDS|OBJECTS|POINTS] POINT lat lon [meters]
//	WITHIN|INTERSECTS key [CURSOR n] [LIMIT n] [NOFIELDS]
//	       [COUNT|IDS|OBJECTS|POINTS]
//	       CIRCLE lat lon meters | BOUNDS minlat minlon maxlat maxlon
//	GEOADD key [CH] lng lat member [lng lat member ...]
//	GEOSEARCH key FROMLONLAT lng lat BYRADIUS r m|km|ft|mi [ASC]
//	       [COUNT n [ANY]] [WITHCOORD] [WITHDIST]
//	GET key id [OBJECT|POINT]       one driver's position (null: not held)
//	DEL key id                      take a driver out of the index (1 or 0)
//	SCAN key [CURSOR n] [LIMIT n] [COUNT|IDS|OBJECTS|POINTS]
//	                                the fleet in id order, a page at a time
//	GEOPOS key member [member ...]  [lng, lat] per member (null: not held)
//	GEODIST key m1 m2 [m|km|ft|mi]  great-circle distance of two drivers
//
// GET, DEL, SCAN, GEOPOS and GEODIST name drivers by id; drivers are
// placed by position, so each asks every matcher (fleet.Client.Lookup,
// Scan, Remove): tools for operators and debugging, not a dispatch loop.
// A driver taken out by DEL comes back with its next update.
//
// A key is a vehicle class: SET and GEOADD into it give the driver that
// class, searches over it find drivers of that class only. The key "fleet"
// (AllClassesKey) is the whole fleet: searches find every class, and
// updates keep the driver's class. Searches find available drivers, as
// NearbyDrivers does, nearest first; GET, SCAN and GEOPOS find drivers of
// any status.
//
// Parse turns a command into a typed Request without I/O; the Append*
// functions write replies; Server runs them over
// github.com/tidwall/redcon.
package resp
