// Package readme reads the runnable examples of the project's README.md, so
// a test can run them against the processes they describe (the README's
// doc-test, readme_test.go in this package).
//
// Every fenced block whose info string is sh, bash or shell is an example a
// reader is meant to run, in document order. A few HTML comments, invisible
// on GitHub, say how; each stands on its own line just before a block (blank
// lines between are allowed), one directive per comment:
//
//	<!-- doctest: session NAME [needs=redis,consul] [dir=repo] -->
//	    this block starts a new session: a fresh shell in a fresh directory,
//	    with fresh ports, which the blocks after it share (variables,
//	    functions, files, background processes) until the next session; the
//	    test starts the servers named by needs= and puts them where the
//	    README's 127.0.0.1:6379 (Redis) and 127.0.0.1:8500 (Consul) are.
//	    With dir=repo the shell works in the repository's root instead (for
//	    `go run ./examples/...`; such a session writes no files and calls
//	    the binary as `geomatch`, not bin/geomatch). Blocks before the first
//	    session directive form the session "readme".
//	<!-- doctest: skip REASON -->
//	    the block is not run; REASON says why.
//	<!-- doctest: background [REGEX] -->
//	    the block is a long-running process a reader starts in a terminal of
//	    its own: it runs in the background until its session ends, and the
//	    next block waits until a line of its output matches REGEX.
//	<!-- doctest: expect REGEX -->
//	    the block's output (stdout and stderr) must match REGEX (Go syntax,
//	    ^ and $ match at line breaks); repeatable.
//
// Parse checks them: a directive that does not parse, or that is not
// followed by a shell block, is an error naming its line. Addresses lists
// the loopback addresses (127.0.0.x:PORT) of a session, which the test maps
// to free ports and test servers, and Substitute rewrites a block with them.
package readme
