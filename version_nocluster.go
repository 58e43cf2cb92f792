//go:build nocluster

package shipote

// A build with the nocluster tag says so in its version (semver build
// metadata), in `shipote version` and in the API's /v1/version, so that
// a single-host daemon is told apart from the default build.
func init() { Version += "+nocluster" }
