package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/fsutil"
	"github.com/berth-sh/berth/internal/pull"
)

// DownloadProgress receives the events of a download.
type DownloadProgress interface {
	// DownloadStart: src is being fetched from byte offset (what an
	// earlier attempt left) of total (-1 when the server does not say).
	DownloadStart(src string, offset, total int64)
	// DownloadBytes: n more bytes arrived.
	DownloadBytes(n int64)
	// DownloadDone: the download ended, err says how.
	DownloadDone(err error)
}

type nopDownload struct{}

func (nopDownload) DownloadStart(string, int64, int64) {}
func (nopDownload) DownloadBytes(int64)                {}
func (nopDownload) DownloadDone(error)                 {}

// maxSumsSize bounds SHA256SUMS and its signature, read into memory.
const maxSumsSize = 1 << 20

type fetcher struct {
	client   *http.Client
	progress DownloadProgress
	retries  int
	sleep    func(context.Context, time.Duration) error
}

// errNotFound marks a 404 (a missing SHA256SUMS is said differently from
// a failing server).
var errNotFound = errors.New("not found")

// small fetches a small file (SHA256SUMS) into memory.
func (f *fetcher) small(ctx context.Context, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("fetch %s: %w", u.Redacted(), errNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetch %s: %s", u.Redacted(), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSumsSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	if len(b) > maxSumsSize {
		return nil, fmt.Errorf("fetch %s: more than %d bytes", u.Redacted(), maxSumsSize)
	}
	return b, nil
}

// partialMeta is what is kept next to a partial download so that it is
// resumed only from the same version of the file (If-Range).
type partialMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
}

func (m partialMeta) validator() string {
	if m.ETag != "" && !strings.HasPrefix(m.ETag, "W/") {
		return m.ETag
	}
	return m.LastModified
}

// spoolPaths are where a download of u is kept between attempts: named by
// the URL's hash, so a rerun of the same import finds it.
func spoolPaths(dir string, u *url.URL) (part, meta string) {
	sum := sha256.Sum256([]byte(u.String()))
	key := hex.EncodeToString(sum[:16])
	return filepath.Join(dir, key+".partial"), filepath.Join(dir, key+".meta")
}

// download is a finished download: the file (still locked against another
// import of the same URL) and its sha256.
type download struct {
	f            *os.File
	part, meta   string
	sum          v1.Hash
	lastModified time.Time
}

// discard removes the download (after the install, or a failed check).
func (d *download) discard() {
	os.Remove(d.part)
	os.Remove(d.meta)
	d.f.Close()
}

// get downloads u into the spool directory, hashing as it goes. A partial
// file an interrupted attempt (or an earlier run) left is resumed with a
// Range request when the server allows it; resumeBlind allows that even
// without a validator (ETag, Last-Modified) because the whole file's
// checksum is verified afterwards. Failed attempts are retried f.retries
// times; what arrived is kept for the next run either way.
func (f *fetcher) get(ctx context.Context, u *url.URL, dir string, resumeBlind bool) (_ *download, err error) {
	shown := u.Redacted()
	part, metaPath := spoolPaths(dir, u)
	file, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", shown, err)
	}
	if err := unix.Flock(int(file.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		file.Close()
		return nil, fmt.Errorf("download %s: another berth import is downloading it", shown)
	}
	defer func() {
		if err != nil {
			file.Close()
		}
	}()
	var meta partialMeta
	if b, err := os.ReadFile(metaPath); err == nil {
		json.Unmarshal(b, &meta) //nolint:errcheck // a bad file means no validator
	}
	if meta.URL != u.String() {
		meta = partialMeta{}
	}
	h := sha256.New()
	off, err := io.Copy(h, file)
	if err != nil {
		return nil, fmt.Errorf("download %s: read partial file: %w", shown, err)
	}
	restart := func() error {
		off = 0
		h.Reset()
		return file.Truncate(0)
	}
	if off > 0 && meta.validator() == "" && !resumeBlind {
		if err := restart(); err != nil {
			return nil, err
		}
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > f.retries {
				f.progress.DownloadDone(lastErr)
				return nil, fmt.Errorf("download %s: %w (the %s that arrived are kept: run the import again to resume)", shown, lastErr, pull.HumanSize(off))
			}
			if err := f.sleep(ctx, time.Duration(attempt)*250*time.Millisecond); err != nil {
				return nil, fmt.Errorf("download %s: %w", shown, err)
			}
		}
		var total int64
		var done bool
		off, total, done, err = f.attempt(ctx, u, file, h, off, &meta, metaPath, restart)
		if err == nil && done {
			break
		}
		if err == nil {
			err = fmt.Errorf("connection closed after %d of %d bytes: %w", off, total, io.ErrUnexpectedEOF)
		}
		lastErr = err
		if ctx.Err() != nil || errors.Is(err, errFatal) {
			f.progress.DownloadDone(err)
			return nil, fmt.Errorf("download %s: %w", shown, err)
		}
	}
	f.progress.DownloadDone(nil)
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	d := &download{f: file, part: part, meta: metaPath, sum: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}}
	d.lastModified, _ = http.ParseTime(meta.LastModified)
	return d, nil
}

// errFatal marks an answer retrying will not change (404, 403).
var errFatal = errors.New("server refused")

// attempt makes one request for u from byte off and appends the body to
// file, and to h, which holds the hash of the file's first off bytes. It
// returns the new offset; done reports the whole resource is in the file.
func (f *fetcher) attempt(ctx context.Context, u *url.URL, file *os.File, h io.Writer, off int64, meta *partialMeta, metaPath string, restart func() error) (newOff, total int64, done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return off, 0, false, fmt.Errorf("%w: %w", errFatal, err)
	}
	// Byte offsets must be the file's: no transparent decompression.
	req.Header.Set("Accept-Encoding", "identity")
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		if v := meta.validator(); v != "" {
			req.Header.Set("If-Range", v)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return off, 0, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			// Not the range asked for: start over, without a range.
			return 0, 0, false, restartErr(restart)
		}
		total = size
	case http.StatusOK:
		// The server ignored the range, or the file changed (If-Range).
		if err := restart(); err != nil {
			return 0, 0, false, err
		}
		off = 0
		total = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		return 0, 0, false, restartErr(restart)
	default:
		err := fmt.Errorf("GET: %s", resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			err = fmt.Errorf("%w: %w", errFatal, err)
		}
		return off, 0, false, err
	}
	*meta = partialMeta{URL: u.String(), ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if b, err := json.Marshal(meta); err == nil {
		if err := fsutil.AtomicWrite(metaPath, b, 0o600); err != nil {
			return off, total, false, fmt.Errorf("%w: %w", errFatal, err)
		}
	}
	if _, err := file.Seek(off, io.SeekStart); err != nil {
		return off, total, false, fmt.Errorf("%w: %w", errFatal, err)
	}
	f.progress.DownloadStart(u.Redacted(), off, total)
	w := io.MultiWriter(file, h)
	buf := make([]byte, 256<<10)
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				return off, total, false, fmt.Errorf("%w: write: %w", errFatal, err)
			}
			off += int64(k)
			f.progress.DownloadBytes(int64(k))
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return off, total, false, rerr
		}
	}
	return off, total, total < 0 || off >= total, nil
}

func restartErr(restart func() error) error {
	if err := restart(); err != nil {
		return err
	}
	return errors.New("the server did not resume at the requested offset")
}

// parseContentRange parses "bytes START-END/SIZE"; SIZE may be "*" (-1).
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if sz == "*" {
		return start, -1, true
	}
	size, err = strconv.ParseInt(sz, 10, 64)
	return start, size, err == nil
}
