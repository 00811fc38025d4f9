package agent

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// KVFold manifest identity accepted by --fold-file.
const (
	FoldAPIVersion = "slipstream.dev/v1alpha1"
	FoldKind       = "KVFold"
	maxFoldFile    = 1 << 20
)

// foldManifest is the part of a KVFold manifest the standalone agent reads. Fields the
// agent does not use (placement, image, ...) are ignored so the manifest the operator
// applies works unchanged.
type foldManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		NATS struct {
			URLs []string `json:"urls"`
			URL  string   `json:"url"`
		} `json:"nats"`
		Bucket string `json:"bucket"`
		Scope  struct {
			Prefixes []string `json:"prefixes"`
		} `json:"scope"`
		Backend struct {
			Type   string `json:"type"`
			Pebble struct {
				Sync      *bool  `json:"sync"`
				CacheSize string `json:"cacheSize"`
			} `json:"pebble"`
		} `json:"backend"`
		Batch struct {
			Window     string `json:"window"`
			MaxUpdates *int   `json:"maxUpdates"`
		} `json:"batch"`
		Export *struct {
			URL      string `json:"url"`
			Schedule string `json:"schedule"`
			Retain   *int   `json:"retain"`
		} `json:"export"`
	} `json:"spec"`
}

func readFoldFile(path string) (*foldManifest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, configErrorf("--fold-file %q: unreadable: %v", path, errors.Unwrap(err))
	}
	if fi.IsDir() {
		return nil, configErrorf("--fold-file %q: is a directory", path)
	}
	if fi.Size() > maxFoldFile {
		return nil, configErrorf("--fold-file %q: larger than %d bytes", path, maxFoldFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, configErrorf("--fold-file %q: unreadable: %v", path, errors.Unwrap(err))
	}
	return parseFoldManifest(path, b)
}

func parseFoldManifest(path string, b []byte) (*foldManifest, error) {
	var m foldManifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, configErrorf("--fold-file %q: not a valid KVFold manifest: %v", path, err)
	}
	if m.APIVersion != FoldAPIVersion || m.Kind != FoldKind {
		return nil, configErrorf("--fold-file %q: apiVersion/kind %q/%q, want %s/%s", path, m.APIVersion, m.Kind, FoldAPIVersion, FoldKind)
	}
	if m.Spec.Batch.Window != "" {
		if _, err := time.ParseDuration(m.Spec.Batch.Window); err != nil {
			return nil, configErrorf("--fold-file %q: spec.batch.window %q: not a duration (e.g. 10ms)", path, m.Spec.Batch.Window)
		}
	}
	return &m, nil
}

// applyTo fills the raw flags from the manifest where neither the command line nor the
// environment set them.
func (m *foldManifest) applyTo(r *rawRun, set map[string]bool) error {
	s := m.Spec
	if !set["nats-url"] {
		urls := s.NATS.URLs
		if s.NATS.URL != "" {
			urls = append([]string{s.NATS.URL}, urls...)
		}
		if len(urls) > 0 {
			r.natsURL = strings.Join(urls, ",")
		}
	}
	if !set["bucket"] && s.Bucket != "" {
		r.bucket = s.Bucket
	}
	if !set["prefix"] && len(s.Scope.Prefixes) > 0 {
		r.prefixes = append([]string(nil), s.Scope.Prefixes...)
	}
	if !set["backend"] && s.Backend.Type != "" {
		r.backend = s.Backend.Type
	}
	if !set["pebble-sync"] && s.Backend.Pebble.Sync != nil {
		r.pebbleSync = strconv.FormatBool(*s.Backend.Pebble.Sync)
	}
	if !set["pebble-cache-size"] && s.Backend.Pebble.CacheSize != "" {
		q, err := resource.ParseQuantity(s.Backend.Pebble.CacheSize)
		if err != nil {
			return configErrorf("--fold-file: spec.backend.pebble.cacheSize %q: %v", s.Backend.Pebble.CacheSize, err)
		}
		r.pebbleCache = strconv.FormatInt(q.Value(), 10)
	}
	if !set["batch-window"] && s.Batch.Window != "" {
		r.batchWindow = s.Batch.Window
	}
	if !set["batch-max"] && s.Batch.MaxUpdates != nil {
		r.batchMax = strconv.Itoa(*s.Batch.MaxUpdates)
	}
	if e := s.Export; e != nil {
		if !set["export-url"] && e.URL != "" {
			r.exportURL = e.URL
		}
		if !set["export-schedule"] && !set["export-interval"] && e.Schedule != "" {
			r.exportSchedule = e.Schedule
		}
		if !set["export-retain"] && e.Retain != nil {
			r.exportRetain = strconv.Itoa(*e.Retain)
		}
	}
	return nil
}

func (m *foldManifest) String() string {
	return fmt.Sprintf("%s/%s %s", m.APIVersion, m.Kind, m.Metadata.Name)
}
