package kv

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// More sentinel errors. Match with errors.Is.
var (
	// ErrClosed: the Conn was used after Close.
	ErrClosed = errors.New("kv: connection closed")
	// ErrBucketExists: CreateBucket found a bucket of that name with a different config.
	ErrBucketExists = errors.New("kv: bucket exists with a different configuration")
	// ErrPayloadTooLarge: the value exceeds the bucket's or server's maximum message size.
	ErrPayloadTooLarge = errors.New("kv: value too large")
	// ErrBucketFull: the bucket reached max bytes (KV buckets discard new writes).
	ErrBucketFull = errors.New("kv: bucket full")
)

// Server error codes that callers branch on (nats-server JSErrCodes).
const (
	codeWrongLastSequence         = 10071 // expected last subject sequence mismatch
	codeWrongLastSequenceConstant = 10164 // same, as reported by replicated streams
	codeStreamNotFound            = 10059
	codeMessageNotFound           = 10037
	codeStreamNameInUse           = 10058
	codeMessageExceedsMaximum     = 10054
	codeStoreFailed               = 10077 // includes "maximum bytes exceeded"
	codeMaxBytesExceeded          = 10047 // insufficient resources
	codeNotEnabled                = 10076
	codeNotEnabledForAccount      = 10039
)

// mapErr translates nats.go and server errors into the package's sentinels while keeping
// the original error in the chain (both are matchable with errors.Is). op is lower-case
// context such as "put key \"a\"".
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if s := sentinelFor(err); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("%s: %w: %w", op, s, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func sentinelFor(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeWrongLastSequence, codeWrongLastSequenceConstant:
			return ErrRevisionMismatch
		case codeStreamNotFound:
			return ErrBucketNotFound
		case codeMessageNotFound:
			return ErrKeyNotFound
		case codeStreamNameInUse:
			return ErrBucketExists
		case codeMessageExceedsMaximum:
			return ErrPayloadTooLarge
		case codeStoreFailed, codeMaxBytesExceeded:
			return ErrBucketFull
		case codeNotEnabled, codeNotEnabledForAccount:
			return ErrUnsupported
		}
		if apiErr.Code == 403 {
			return ErrPermissionDenied
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return ErrAlreadyExists
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrMsgNotFound):
		return ErrKeyNotFound
	case errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return ErrBucketNotFound
	case errors.Is(err, jetstream.ErrInvalidKey):
		return ErrInvalidKey
	case errors.Is(err, nats.ErrPermissionViolation), errors.Is(err, nats.ErrAuthorization):
		return ErrPermissionDenied
	case errors.Is(err, nats.ErrConnectionClosed):
		return ErrClosed
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return ErrBucketUnavailable
	case errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrNoServers):
		return ErrNotConnected
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return ErrUnsupported
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil
	}
	return nil
}
