package export

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestObjectKeyRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 6, 0, 0, 42, time.UTC)
	key, err := objectKey("routes", 12345, at)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "routes/00000000000000012345-") || !strings.HasSuffix(key, Extension) {
		t.Fatalf("key %q", key)
	}
	o, ok := ParseKey(key)
	if !ok || o.Bucket != "routes" || o.Cursor != 12345 || !o.Created.Equal(at) || o.Key != key {
		t.Fatalf("ParseKey(%q) = %+v, %v", key, o, ok)
	}
	other, _ := objectKey("routes", 12345, at)
	if other == key {
		t.Fatal("two keys for the same cursor and time collide")
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, k := range []string{
		"",
		"routes",
		"routes/",
		"00000000000000012345-0000000000000000042-0123456789abcdef.slex", // no bucket
		"routes/00000000000000012345-0000000000000000042-0123456789abcdef.slex.tmp",
		"routes/12345-0000000000000000042-0123456789abcdef.slex",
		"routes/00000000000000000000-0000000000000000042-0123456789abcdef.slex", // cursor 0
		"routes/9999999999999999999a-0000000000000000042-0123456789abcdef.slex",
		"routes/99999999999999999999-0000000000000000042-0123456789abcdef.slex", // > uint64
		"routes/00000000000000012345-0000000000000000042-0123456789ABCDEF.slex",
		"routes/00000000000000012345-0000000000000000042-0123456789abcdeg.slex",
		"routes/x/00000000000000012345-0000000000000000042-0123456789abcdef.slex",
		"routes/00000000000000012345-0000000000000000042.slex",
		"routes/README.md",
	} {
		if o, ok := ParseKey(k); ok {
			t.Errorf("ParseKey(%q) = %+v, want rejected", k, o)
		}
	}
}

func TestNewerOrder(t *testing.T) {
	t0 := time.Unix(100, 0)
	objs := []Object{
		{Key: "b/1", Cursor: 5, Created: t0},
		{Key: "b/2", Cursor: 9, Created: t0}, // oldest wall clock but highest cursor: newest
		{Key: "b/3", Cursor: 5, Created: t0.Add(time.Hour)},
		{Key: "b/4", Cursor: 7, Created: t0.Add(2 * time.Hour)},
	}
	slices.SortFunc(objs, newer)
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
	}
	if want := []string{"b/2", "b/4", "b/3", "b/1"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestParseTempKey(t *testing.T) {
	const key = "routes/00000000000000012345-0000000000000000042-0123456789abcdef.slex"
	o, ok := parseTempKey(key + ".18a2b3c4d5e6f708.tmp")
	if !ok || o.Cursor != 12345 || o.Bucket != "routes" || o.Key != key+".18a2b3c4d5e6f708.tmp" {
		t.Fatalf("parseTempKey = %+v, %v", o, ok)
	}
	for _, k := range []string{
		key, key + ".tmp", key + "..tmp", key + ".xyz.tmp", key + ".12.tmp.x",
		"routes/notes.txt.12.tmp", "routes/00000000000000012345-x.slex.12.tmp",
	} {
		if _, ok := parseTempKey(k); ok {
			t.Errorf("parseTempKey(%q) accepted", k)
		}
	}
}
