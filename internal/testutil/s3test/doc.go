// Package s3test starts a real S3-compatible server (SeaweedFS `weed mini`) for tests:
// its own data directory, every port a free one on 127.0.0.1, credentials of its own, and
// a cleanup that stops it by PID.
//
// The weed binary is built by hack/seaweedfs.sh (or `make tools`); it is looked up in
// $SLIPSTREAM_WEED, then <repo>/bin/weed, then $PATH. When it is missing, Start fails the
// test with a message saying how to build it: the object-storage tests never skip
// silently.
package s3test
