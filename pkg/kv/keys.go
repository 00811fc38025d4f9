package kv

import (
	"fmt"
	"strings"
)

// kvSubjectPrefix is the subject namespace of KV buckets: bucket B stores key k on
// subject "$KV.B.k" in stream "KV_B".
const kvSubjectPrefix = "$KV."

func subjectPrefix(bucket string) string { return kvSubjectPrefix + bucket + "." }

func streamName(bucket string) string { return "KV_" + bucket }

// ValidateKey checks that key is a valid KV key: non-empty, made of letters, digits and
// "-/_=.", not starting or ending with ".", without empty tokens. Errors wrap ErrInvalidKey
// and name the key.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: key is empty", ErrInvalidKey)
	}
	if key[0] == '.' || key[len(key)-1] == '.' {
		return fmt.Errorf("%w: key %q starts or ends with \".\"", ErrInvalidKey, key)
	}
	if strings.Contains(key, "..") {
		return fmt.Errorf("%w: key %q has an empty token", ErrInvalidKey, key)
	}
	for i := 0; i < len(key); i++ {
		if !validKeyByte(key[i]) {
			return fmt.Errorf("%w: key %q has invalid character %q at %d", ErrInvalidKey, key, key[i], i)
		}
	}
	return nil
}

func validKeyByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '/', '_', '=', '.':
		return true
	}
	return false
}

// validBucketName mirrors the server's rule for bucket names.
func validBucketName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: bucket name is empty", ErrInvalidConfig)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: bucket name %q has invalid character %q", ErrInvalidConfig, name, c)
		}
	}
	return nil
}
