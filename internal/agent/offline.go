package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// Inspection is the output of `agent inspect`.
type Inspection struct {
	Backend    string `json:"backend"`
	Cursor     uint64 `json:"cursor"`
	Keys       uint64 `json:"keys"`
	Tombstones uint64 `json:"tombstones"`
	LiveBytes  uint64 `json:"liveBytes"`
	DiskBytes  uint64 `json:"diskBytes"`
	Resyncing  bool   `json:"resyncing"`
}

// verifier is implemented by stores that can check their files in full.
type verifier interface{ Verify() error }

func mainOffline(cmd string, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "directory of the fold (required; env SLIPSTREAM_DATA_DIR)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: agent %s --data-dir DIR\n\n%s\n\nFlags:\n", cmd, offlineHelp[cmd])
		printFlags(fs, false)
		fmt.Fprint(stderr, exitCodeHelp)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "error: unexpected argument %q: %s takes only --data-dir\n", fs.Arg(0), cmd)
		return ExitUsage
	}
	if *dir == "" {
		if v, ok := getenv(envName("data-dir")); ok {
			*dir = v
		}
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "error: --data-dir is required (or SLIPSTREAM_DATA_DIR)")
		return ExitUsage
	}
	if err := existingDir(*dir); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitUsage
	}
	backend, err := detectBackend(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "error: --data-dir %q: %v\n", *dir, err)
		return ExitDataProblem
	}
	s, err := openBackend(*dir, backend)
	if err != nil {
		fmt.Fprintf(stderr, "error: open %s fold in %q: %v\n", backend, *dir, err)
		if errors.Is(err, fold.ErrCorrupted) || errors.Is(err, fold.ErrUnknownBackend) {
			return ExitDataProblem
		}
		return ExitFailure
	}
	defer s.Close()
	switch cmd {
	case "dump":
		err = dump(s, stdout)
	case "inspect":
		err = inspect(s, backend, stdout)
	case "verify":
		err = verify(s)
		if err == nil {
			fmt.Fprintf(stdout, "ok: %s fold in %s verified\n", backend, *dir)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %s: %v\n", cmd, err)
		if cmd == "verify" || errors.Is(err, fold.ErrCorrupted) {
			return ExitDataProblem
		}
		return ExitFailure
	}
	return ExitOK
}

var offlineHelp = map[string]string{
	"dump":    "Print the fold as NDJSON sorted by key, one line per live key:\n{\"key\":\"...\",\"value\":\"<base64>\",\"revision\":N}. The backend is detected from the directory.\nThe agent must not be running on the directory.",
	"inspect": "Print {\"backend\",\"cursor\",\"keys\",\"tombstones\",\"liveBytes\",\"diskBytes\",\"resyncing\"} as JSON.",
	"verify":  "Check the fold in full (checksums, order, counts, revisions against the cursor).\nExit 0 when clean, 3 with the first problem named.",
}

func dump(s fold.Store, w io.Writer) error {
	snap, err := s.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	for e, err := range snap.Range("", false) {
		if err != nil {
			return err
		}
		if err := enc.Encode(KeyLine{Key: e.Key, Value: e.Value, Revision: e.Revision}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func inspect(s fold.Store, backend string, w io.Writer) error {
	st, err := s.Stats()
	if err != nil {
		return err
	}
	state := s.State()
	enc := json.NewEncoder(w)
	return enc.Encode(Inspection{Backend: backend, Cursor: state.Cursor, Keys: st.Live, Tombstones: st.Tombstones,
		LiveBytes: st.LiveBytes, DiskBytes: st.DiskBytes, Resyncing: state.Resyncing})
}

// verify runs the store's own full check (when it has one) and then checks what every
// store must satisfy: keys strictly ordered, revisions at or below the cursor, and counts
// equal to what Stats reports.
func verify(s fold.Store) error {
	if v, ok := s.(verifier); ok {
		if err := v.Verify(); err != nil {
			return err
		}
	}
	snap, err := s.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	state := snap.State()
	var live, tomb, liveBytes uint64
	prev, first := "", true
	for e, err := range snap.Range("", true) {
		if err != nil {
			return err
		}
		if !first && e.Key <= prev {
			return fmt.Errorf("%w: key %q after %q: not strictly ordered", fold.ErrCorrupted, e.Key, prev)
		}
		first, prev = false, e.Key
		if e.Revision > state.Cursor && !state.Resyncing {
			return fmt.Errorf("%w: key %q has revision %d above the cursor %d", fold.ErrCorrupted, e.Key, e.Revision, state.Cursor)
		}
		if e.Live {
			live++
			liveBytes += uint64(len(e.Key) + len(e.Value))
		} else {
			tomb++
		}
	}
	st, err := snap.Stats()
	if err != nil {
		return err
	}
	if st.Live != live || st.Tombstones != tomb || st.LiveBytes != liveBytes {
		return fmt.Errorf("%w: stats say %d live (%d bytes) + %d tombstones, the keys are %d live (%d bytes) + %d tombstones",
			fold.ErrCorrupted, st.Live, st.LiveBytes, st.Tombstones, live, liveBytes, tomb)
	}
	return nil
}

// existingDir checks the --data-dir of an offline command, which reads a fold that must
// already be there: a missing directory and a file are told apart.
func existingDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--data-dir %q does not exist (no fold there yet)", dir)
	case err != nil:
		return fmt.Errorf("--data-dir %q: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("--data-dir %q: not a directory", dir)
	}
	return nil
}
