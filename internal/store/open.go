package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The on-disk meta page of bbolt (go.etcd.io/bbolt/internal/common): a
// 16-byte page header, then magic, version, page size, flags (4 bytes
// each), root bucket (pgid, sequence), freelist pgid, high-water pgid,
// txid and an FNV-64a checksum of the fields before it. bbolt writes it in
// the host's byte order.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64
	metaSumLen     = 56
	noFreelist     = ^uint64(0)
)

type boltMeta struct {
	magic, version, pageSize uint32
	root, freelist, pgid     uint64
	txid, checksum           uint64
}

func parseMeta(b []byte) boltMeta {
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	e := binary.NativeEndian
	return boltMeta{
		magic:    e.Uint32(m[0:]),
		version:  e.Uint32(m[4:]),
		pageSize: e.Uint32(m[8:]),
		root:     e.Uint64(m[16:]),
		freelist: e.Uint64(m[32:]),
		pgid:     e.Uint64(m[40:]),
		txid:     e.Uint64(m[48:]),
		checksum: e.Uint64(m[56:]),
	}
}

func metaSum(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b[pageHeaderSize : pageHeaderSize+metaSumLen])
	return h.Sum64()
}

// preflight reads the two meta pages itself, before bbolt maps the file,
// and sorts out files that are not bbolt databases (ErrForeign) from
// damaged or truncated ones (ErrCorrupt). A truncated file would make
// bbolt fault on pages past its end. It returns the newest valid meta
// page.
func preflight(path string) (*boltMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err) // *PathError: "open PATH: why"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	size := st.Size()

	metas, bufs := readMetas(f)
	best, magicSeen, why := bestMeta(metas, bufs)
	if !magicSeen {
		return nil, fmt.Errorf("store: open %s: %w: not a bbolt database (%d bytes; the file was not modified)", path, ErrForeign, size)
	}
	if best == nil {
		return nil, fmt.Errorf("store: open %s: %w: no valid meta page (%s; the file was not modified)", path, ErrCorrupt, strings.Join(why, "; "))
	}
	return best, checkMetaBounds(path, best, size)
}

// readMeta reads the meta page at off; false if the file ends before it.
func readMeta(f io.ReaderAt, off int64) (boltMeta, []byte, bool) {
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, off); err != nil {
		return boltMeta{}, nil, false
	}
	return parseMeta(buf), buf, true
}

// readMetas reads the first meta page and the second, with their bytes.
// The second is one page in; the page size comes from the first meta
// page, or, if that is damaged, is one of the usual ones: the first
// offset holding bbolt's magic wins.
func readMetas(f io.ReaderAt) ([]boltMeta, [][]byte) {
	var metas []boltMeta
	var bufs [][]byte
	m0, b0, ok := readMeta(f, 0)
	if ok {
		metas, bufs = append(metas, m0), append(bufs, b0)
	}
	offsets := []int64{}
	if ok && m0.magic == boltMagic && validPageSize(m0.pageSize) {
		offsets = append(offsets, int64(m0.pageSize))
	}
	offsets = append(offsets, int64(os.Getpagesize()), 4096, 8192, 16384, 32768, 65536)
	seen := map[int64]bool{}
	for _, off := range offsets {
		if seen[off] {
			continue
		}
		seen[off] = true
		if m, b, ok := readMeta(f, off); ok && m.magic == boltMagic {
			metas, bufs = append(metas, m), append(bufs, b)
			break
		}
	}
	return metas, bufs
}

// bestMeta picks the valid meta page with the highest txid, as bbolt
// does. magicSeen reports whether any page held bbolt's magic; why says
// what is wrong with each invalid one.
func bestMeta(metas []boltMeta, bufs [][]byte) (best *boltMeta, magicSeen bool, why []string) {
	for i := range metas {
		m := &metas[i]
		if m.magic != boltMagic {
			continue
		}
		magicSeen = true
		switch {
		case m.version != boltVersion:
			why = append(why, fmt.Sprintf("meta page %d: bbolt format version %d, expected %d", i, m.version, boltVersion))
		case m.checksum != metaSum(bufs[i]):
			why = append(why, fmt.Sprintf("meta page %d: checksum mismatch", i))
		case !validPageSize(m.pageSize):
			why = append(why, fmt.Sprintf("meta page %d: page size %d", i, m.pageSize))
		default:
			if best == nil || m.txid > best.txid {
				best = m
			}
		}
	}
	return best, magicSeen, why
}

// checkMetaBounds checks that the file holds the pages the meta page
// names: its high-water mark, root and freelist.
func checkMetaBounds(path string, best *boltMeta, size int64) error {
	need := int64(best.pgid) * int64(best.pageSize)
	switch {
	case best.pgid < 4 || best.pgid > 1<<40:
		return fmt.Errorf("store: open %s: %w: meta page says the file has %d pages (the file was not modified)", path, ErrCorrupt, best.pgid)
	case size < need:
		return fmt.Errorf("store: open %s: %w: truncated: %d bytes, its meta page needs at least %d (the file was not modified)", path, ErrCorrupt, size, need)
	case best.root < 2 || best.root >= best.pgid:
		return fmt.Errorf("store: open %s: %w: root page %d out of range (the file was not modified)", path, ErrCorrupt, best.root)
	case best.freelist != noFreelist && (best.freelist < 2 || best.freelist >= best.pgid):
		return fmt.Errorf("store: open %s: %w: freelist page %d out of range (the file was not modified)", path, ErrCorrupt, best.freelist)
	}
	return nil
}

func validPageSize(n uint32) bool {
	return n >= 512 && n <= 1<<20 && n&(n-1) == 0
}

// validate opens the file read-only (a shared lock: it fails with
// ErrLocked while another calld has it), reads every page reachable from
// the root, runs bbolt's consistency check and checks calld's magic and
// schema. empty reports a bbolt file without any bucket (a new file whose
// first transaction did not happen), which Open initialises.
func validate(path string, timeout time.Duration) (empty bool, err error) {
	bdb, err := openBolt(path, &bolt.Options{
		ReadOnly:     true,
		Timeout:      timeout,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return false, openError(path, timeout, err)
	}
	defer bdb.Close()

	if empty, err = walk(bdb); err != nil {
		return false, fmt.Errorf("store: open %s: %w (the file was not modified)", path, err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		if !empty {
			if err := checkSchema(path, tx); err != nil {
				return err
			}
		}
		var problems []string
		n := 0
		for err := range tx.Check() {
			n++
			if len(problems) < 3 {
				problems = append(problems, err.Error())
			}
		}
		if n > 0 {
			return fmt.Errorf("store: open %s: %w: bbolt check found %d problems (%s; the file was not modified)", path, ErrCorrupt, n, strings.Join(problems, "; "))
		}
		return nil
	})
	return empty, err
}

// walk reads every key and value of every bucket, so that a damaged page
// shows up here as an error rather than later as a crash: bbolt panics on
// inconsistent pages, and a page pointer past the end of the file faults,
// which debug.SetPanicOnFault turns into a panic on this goroutine.
func walk(bdb *bolt.DB) (empty bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if f, ok := p.(interface{ Addr() uintptr }); ok {
				err = fmt.Errorf("%w: reading its pages failed: memory fault at %#x (a page pointer past the end of the file)", ErrCorrupt, f.Addr())
				return
			}
			err = fmt.Errorf("%w: reading its pages failed: %v", ErrCorrupt, p)
		}
	}()
	h := crc32.NewIEEE()
	buckets := 0
	err = bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			buckets++
			return walkBucket(b, h)
		})
	})
	return buckets == 0, err
}

func walkBucket(b *bolt.Bucket, h io.Writer) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		h.Write(k)
		if v != nil {
			h.Write(v)
			continue
		}
		if child := b.Bucket(k); child != nil {
			if err := walkBucket(child, h); err != nil {
				return err
			}
		}
	}
	return nil
}
