package memory

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// checkHeader validates the log header.
func checkHeader(h []byte) error {
	if len(h) < headerLen || string(h[:len(logMagic)]) != logMagic {
		return fmt.Errorf("%w: log header %q is not %q", fold.ErrCorrupted, h, logMagic)
	}
	if v := binary.LittleEndian.Uint16(h[len(logMagic):]); v != logVersion {
		return fmt.Errorf("%w: log format version %d, this build reads %d", storekit.ErrUnsupportedFormat, v, logVersion)
	}
	return nil
}

// walk decodes records from src, which starts at offset start of a log of size bytes. It
// calls fn for each valid record and returns the offset just after the last CURSOR record:
// the end of the last complete batch. A torn tail is not an error; tailAt supplies the bytes
// from an offset to the end of the log when a record fails, to tell a torn tail from
// corruption.
func walk(src source, start, size int64, tailAt func(off int64) ([]byte, error), fn func(rec *record) error) (int64, error) {
	off, end := start, start
	for off < size {
		rec, n, st := decode(src)
		if rs, ok := src.(*readerSource); ok && rs.err != nil {
			return end, fmt.Errorf("read log at offset %d: %w", off, rs.err)
		}
		if st != recOK {
			tail, err := tailAt(off)
			if err != nil {
				return end, fmt.Errorf("read log tail at offset %d: %w", off, err)
			}
			err = classifyFailure(tail, st, n)
			if errors.Is(err, errTorn) {
				return end, nil
			}
			return end, fmt.Errorf("%w: log record at offset %d: %w", fold.ErrCorrupted, off, err)
		}
		if err := fn(&rec); err != nil {
			return end, fmt.Errorf("%w: log record at offset %d: %w", fold.ErrCorrupted, off, err)
		}
		off += int64(n)
		if rec.typ == recCursor {
			end = off
		}
	}
	return end, nil
}

// checkRecord validates a record's meaning without applying it.
func checkRecord(rec *record) error {
	if rec.typ == recCursor {
		_, err := rec.state()
		return err
	}
	_, err := rec.mutation()
	return err
}

// parseLog validates a whole log held in memory and returns the end of its last complete
// batch. It is the parser the fuzz targets exercise; files go through readLog.
func parseLog(data []byte, fn func(rec *record) error) (int64, error) {
	if err := checkHeader(data); err != nil {
		return 0, err
	}
	tailAt := func(off int64) ([]byte, error) { return data[off:], nil }
	return walk(&sliceSource{data: data[headerLen:]}, headerLen, int64(len(data)), tailAt, func(rec *record) error {
		if err := checkRecord(rec); err != nil {
			return err
		}
		return fn(rec)
	})
}

// readLog validates f (size bytes) and replays its complete batches: pass one checks every
// checksum and finds the end of the last complete batch, pass two applies the records up to
// it, so a torn batch is never applied and nothing is buffered. It returns that end.
func readLog(f *os.File, size int64, apply func(m fold.Mutation), setState func(fold.State)) (int64, error) {
	if size < int64(headerLen) {
		return 0, fmt.Errorf("%w: log of %d bytes is shorter than its header", fold.ErrCorrupted, size)
	}
	h := make([]byte, headerLen)
	if _, err := f.ReadAt(h, 0); err != nil {
		return 0, fmt.Errorf("read log header: %w", err)
	}
	if err := checkHeader(h); err != nil {
		return 0, err
	}
	tailAt := func(off int64) ([]byte, error) {
		b := make([]byte, size-off)
		_, err := f.ReadAt(b, off)
		return b, err
	}
	src := func(limit int64) *readerSource {
		return &readerSource{r: bufio.NewReaderSize(io.NewSectionReader(f, headerLen, limit-headerLen), 1<<20), remaining: limit - headerLen}
	}
	end, err := walk(src(size), headerLen, size, tailAt, checkRecord)
	if err != nil {
		return 0, err
	}
	noTail := func(off int64) ([]byte, error) {
		return nil, fmt.Errorf("log changed while reading at offset %d", off)
	}
	_, err = walk(src(end), headerLen, end, noTail, func(rec *record) error {
		if rec.typ == recCursor {
			st, err := rec.state()
			setState(st)
			return err
		}
		m, err := rec.mutation()
		if err == nil {
			apply(m)
		}
		return err
	})
	return end, err
}
