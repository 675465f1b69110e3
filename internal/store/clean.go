package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"runtime/debug"
	"syscall"
	"time"
)

// A clean stop. Close ends with a transaction that writes bbolt's
// freelist to its page, then records, in the unused tail of the other
// meta page (the one the next commit overwrites whole), a trailer naming
// that transaction and a CRC-32C of every page below the high-water mark.
// Open of a file whose trailer names its newest transaction and whose
// pages still have that checksum skips the validation of every page
// (validate): the file is byte for byte what a clean Close left, and bbolt
// reads its freelist from its page instead of rebuilding it by reading
// every page. Any commit after the clean stop rewrites that meta page and
// so erases the trailer: a crash after it makes the next Open walk the
// whole file, as does any damage to a page since (the checksum differs).
// bbolt ignores the bytes after its meta fields (its checksum covers only
// those), and an older calld reads the file unchanged.
const (
	cleanMagic   = "calld-clean-v1\x00\x00"
	cleanOffset  = 128 // in the meta page, after bbolt's 80 bytes
	cleanSize    = 16 + 8 + 8 + 4 + 4
	metaPageSize = 4096 // the smallest meta page the trailer fits in
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// trailerPage is the meta page that holds the trailer of transaction txid:
// the one bbolt writes at the next commit.
func trailerPage(txid uint64) int64 { return int64((txid + 1) % 2) }

// pagesSum is the CRC-32C of the pages [2, m.pgid) of f, read through a
// read-only mapping (no copy of the file through the page cache). A page
// that cannot be read (the file cut meanwhile) is an error, not a fault.
func pagesSum(f *os.File, m *boltMeta) (sum uint32, err error) {
	start, end := 2*int64(m.pageSize), int64(m.pgid)*int64(m.pageSize)
	if end <= start {
		return 0, nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(end), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer syscall.Munmap(data)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			sum, err = 0, fmt.Errorf("reading the file failed: %v", p)
		}
	}()
	return crc32.Checksum(data[start:end], castagnoli), nil
}

func encodeTrailer(m *boltMeta, sum uint32) []byte {
	b := make([]byte, cleanSize)
	copy(b, cleanMagic)
	binary.LittleEndian.PutUint64(b[16:], m.txid)
	binary.LittleEndian.PutUint64(b[24:], m.pgid)
	binary.LittleEndian.PutUint32(b[32:], sum)
	binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], castagnoli))
	return b
}

// stoppedCleanly reports whether the file at path, whose newest valid meta
// page is best (preflight checked its bounds), is as a clean Close left
// it. Any read error is a no: Open then validates the file.
func stoppedCleanly(path string, best *boltMeta) bool {
	if best.freelist == noFreelist || best.pageSize < metaPageSize {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	got := make([]byte, cleanSize)
	if _, err := f.ReadAt(got, trailerPage(best.txid)*int64(best.pageSize)+cleanOffset); err != nil {
		return false
	}
	if string(got[:16]) != cleanMagic ||
		binary.LittleEndian.Uint32(got[36:]) != crc32.Checksum(got[:36], castagnoli) ||
		binary.LittleEndian.Uint64(got[16:]) != best.txid ||
		binary.LittleEndian.Uint64(got[24:]) != best.pgid {
		return false
	}
	sum, err := pagesSum(f, best)
	return err == nil && sum == binary.LittleEndian.Uint32(got[32:])
}

// markClean is the end of Close: the last transaction writes the freelist
// (NoFreelistSync off for it), then, once bbolt has closed the file, the
// trailer is written and synced. Nothing is written when the file is
// still as Open found it after a clean stop. Only bbolt's Close can fail
// it: when the last transaction or the trailer cannot be written (a full
// disk), everything committed is still there and the next Open walks the
// file, as after a crash.
func (db *DB) markClean() error {
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return db.bolt.Close()
	}
	if uint64(tx.ID()) == db.cleanTxid+1 && db.cleanTxid != 0 {
		// Nothing was committed since the clean Open: the trailer holds.
		_ = tx.Rollback()
		return db.bolt.Close()
	}
	// The writer lock is held: no commit reads the flag meanwhile.
	db.bolt.NoFreelistSync = false
	if err := tx.Commit(); err != nil {
		return db.bolt.Close()
	}
	if err := db.bolt.Close(); err != nil {
		return err
	}
	_ = writeTrailer(db.path)
	return nil
}

// writeTrailer records the clean stop of the file at path, closed by
// bbolt, and syncs it.
func writeTrailer(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// bbolt's lock went with its Close: take it again, so that a daemon
	// started meanwhile never has its commits raced by this write.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("the file is open again: %w", err)
	}
	metas, bufs := readMetas(f)
	best, _, _ := bestMeta(metas, bufs)
	if best == nil || best.freelist == noFreelist || best.pageSize < metaPageSize {
		return errors.New("no meta page with a freelist after the last transaction")
	}
	sum, err := pagesSum(f, best)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(encodeTrailer(best, sum), trailerPage(best.txid)*int64(best.pageSize)+cleanOffset); err != nil {
		return err
	}
	return f.Sync()
}

// Verify runs Open's full validation of the file at path (meta pages,
// size, every page read, bbolt's consistency check, calld's magic and
// schema) even after a clean stop, and writes nothing. timeout bounds the
// wait for the lock (a shared one: it fails while calld has the file).
func Verify(path string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if _, err := preflight(path); err != nil {
		return err
	}
	_, err := validate(path, timeout)
	return err
}
