package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/tiering"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

const inspectUsage = `Usage: tiercel inspect segment [--json] [--records] FILE.log
       tiercel inspect manifest [store flags] [--json] --topic T --partition N
       tiercel inspect metadata [store flags] [--json]
       tiercel inspect lease    [store flags] [--json]

Prints what Tiercel keeps on disk and in the object store, read-only.

  segment   a local segment file (<data-dir>/<topic>-<partition>/<base>.log):
            every record batch with its position, offsets, record count,
            timestamps, codec, producer id/epoch/sequence, flags, size and
            whether its CRC32C is right, then a summary. With --records, also
            every record (offset, timestamp, key, value length, headers),
            decompressing compressed batches. The exit status is 1 when a
            batch fails its CRC or is otherwise malformed, or the file ends in
            a torn (partial) batch.
  manifest  a partition's remote manifest: its segments (offsets, size,
            timestamps, leader epochs, object key, upload time), log start
            offset, high watermark, leader epoch and version. The topic id
            comes from the cluster metadata, or from --topic-id.
  metadata  the cluster metadata document (cluster/metadata): topics, ids,
            configs, assignments, leaders, ISRs and epochs.
  lease     the controller lease (cluster/lease): holder, epoch, renewal
            counter and TTL, with the object's last-modified time and age.

Store flags (manifest, metadata, lease) are those of "tiercel serve":
  --object-store URL   file:///abs/dir or s3://bucket/prefix
                       (default file://<data-dir>/objects)
  --data-dir DIR       the broker's data directory, for the default store
                       (default ./data)
  --s3-endpoint URL    custom S3 endpoint, e.g. MinIO (path-style)
  --s3-region REGION   S3 region
S3 credentials come from the standard AWS chain (environment, profile, IMDS).

Run "tiercel inspect <what> --help" for the flags of each.
`

// inspect dispatches "tiercel inspect <what>".
func inspect(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, inspectUsage)
		return usageErrorf("want what to inspect: segment, manifest, metadata or lease")
	}
	what, rest := args[0], args[1:]
	switch what {
	case "segment":
		return inspectSegment(rest, stdout, stderr)
	case "manifest":
		return inspectManifest(rest, stdout, stderr)
	case "metadata":
		return inspectMetadata(rest, stdout, stderr)
	case "lease":
		return inspectLease(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, inspectUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, inspectUsage)
	return usageErrorf("unknown thing to inspect %q: want segment, manifest, metadata or lease", what)
}

// newSubFlags returns a flag set whose usage prints head and the flags.
func newSubFlags(name, head string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, head)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses flags that may come before or after the
// positional arguments (the flag package stops at the first positional),
// and returns the positionals. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// storeFlags are the flags that name an object store, as serve has them.
type storeFlags struct {
	objectStore string
	dataDir     string
	s3Endpoint  string
	s3Region    string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.objectStore, "object-store", "", "object store `URL`: file:///abs/dir or s3://bucket/prefix (default file://<data-dir>/objects)")
	fs.StringVar(&s.dataDir, "data-dir", "./data", "the broker's data `DIR`ectory, for the default --object-store")
	fs.StringVar(&s.s3Endpoint, "s3-endpoint", "", "custom S3 endpoint `URL`, e.g. http://127.0.0.1:9000 for MinIO (path-style addressing)")
	fs.StringVar(&s.s3Region, "s3-region", "", "S3 `REGION` (default from the AWS environment, else us-east-1)")
}

// url is the store URL the flags name.
func (s *storeFlags) url() (string, error) {
	if s.objectStore != "" {
		if strings.HasPrefix(s.objectStore, "mem:") {
			return "", usageErrorf("--object-store: mem:// would be a new, empty store in this process; name the broker's file:// or s3:// store")
		}
		return s.objectStore, nil
	}
	if s.dataDir == "" {
		return "", usageErrorf("--data-dir: must not be empty")
	}
	dir, err := filepath.Abs(s.dataDir)
	if err != nil {
		return "", usageErrorf("--data-dir: %v", err)
	}
	objects := filepath.Join(dir, "objects")
	if _, err := os.Stat(objects); err != nil {
		return "", usageErrorf("--object-store not given, and the default %s cannot be used: %v", objects, err)
	}
	return "file://" + objects, nil
}

// open opens the store read-only in spirit: the tools only read.
func (s *storeFlags) open(ctx context.Context) (objstore.ObjectStore, string, error) {
	u, err := s.url()
	if err != nil {
		return nil, "", err
	}
	st, err := objstore.Open(ctx, u, objstore.OpenOptions{S3: objstore.S3Config{Endpoint: s.s3Endpoint, Region: s.s3Region}})
	if err != nil {
		return nil, "", usageErrorf("--object-store: %v", err)
	}
	return st, u, nil
}

// readObject reads a whole object and its attributes.
func readObject(ctx context.Context, st objstore.ObjectStore, key string) ([]byte, objstore.Attrs, error) {
	rc, attrs, err := st.Get(ctx, key)
	if err != nil {
		return nil, attrs, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, attrs, fmt.Errorf("read %s: %w", key, err)
	}
	attrs.Size = int64(len(b))
	return b, attrs, nil
}

// readMetadata reads and decodes the cluster metadata document.
func readMetadata(ctx context.Context, st objstore.ObjectStore) (*controller.Metadata, []byte, objstore.Attrs, error) {
	b, attrs, err := readObject(ctx, st, controller.MetadataKey)
	if objstore.IsNotFound(err) {
		return nil, nil, attrs, fmt.Errorf("no cluster metadata at %s: this store has never had a broker, or --object-store names another one", controller.MetadataKey)
	}
	if err != nil {
		return nil, nil, attrs, err
	}
	var md controller.Metadata
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, nil, attrs, fmt.Errorf("decode %s: %w", controller.MetadataKey, err)
	}
	return &md, b, attrs, nil
}

// objectJSON describes the stored object a document came from.
type objectJSON struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag"`
	LastModified time.Time `json:"lastModified"`
	// AgeMs is the time since LastModified by this machine's clock.
	AgeMs int64 `json:"ageMs"`
}

func describeObject(key string, a objstore.Attrs, now time.Time) objectJSON {
	return objectJSON{Key: key, Size: a.Size, ETag: a.ETag, LastModified: a.LastModified.UTC(), AgeMs: now.Sub(a.LastModified).Milliseconds()}
}

func (o objectJSON) text() string {
	return fmt.Sprintf("%s (%s, modified %s, %s ago, etag %s)", o.Key, humanBytes(o.Size),
		o.LastModified.Format("2006-01-02T15:04:05.000Z07:00"), roundAge(time.Duration(o.AgeMs)*time.Millisecond), o.ETag)
}

func roundAge(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// humanBytes renders n with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for ; (f >= unit*unit || f <= -unit*unit) && i < 5; i++ {
		f /= unit
	}
	return fmt.Sprintf("%.1f %ciB", f/unit, "KMGTPE"[i])
}

// fmtTimestamp renders a Kafka timestamp in milliseconds.
func fmtTimestamp(ms int64) string {
	if ms < 0 {
		return "none"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// ---- segment ----

const inspectSegmentUsage = `Usage: tiercel inspect segment [--json] [--records] FILE.log

Prints every record batch of a local segment file and a summary. The file is
read as it is on disk, without the broker's indexes: for each batch its file
position, base and last offset, record count, first (base) and max timestamp,
timestamp type (create or append time), compression codec, producer id, epoch
and base sequence, transactional and control flags, partition leader epoch,
size, and whether its CRC32C matches. A batch that fails its CRC, does not
parse, or holds an impossible record count is reported; so are trailing bytes
that do not make a whole batch (a torn write). In either case the command
prints everything it can and exits with status 1. The file is read up to the
size it had when opened; on the active segment of a running broker, a batch
being appended at that moment can show as a torn tail.
`

// segBatch is one batch of "inspect segment".
type segBatch struct {
	Position       int64  `json:"position"`
	BaseOffset     int64  `json:"baseOffset"`
	LastOffset     int64  `json:"lastOffset"`
	RecordCount    int32  `json:"recordCount"`
	FirstTimestamp int64  `json:"firstTimestamp"`
	MaxTimestamp   int64  `json:"maxTimestamp"`
	TimestampType  string `json:"timestampType"`
	Compression    string `json:"compression"`
	ProducerID     int64  `json:"producerId"`
	ProducerEpoch  int16  `json:"producerEpoch"`
	BaseSequence   int32  `json:"baseSequence"`
	Transactional  bool   `json:"transactional"`
	Control        bool   `json:"control"`
	LeaderEpoch    int32  `json:"partitionLeaderEpoch"`
	Size           int    `json:"size"`
	CRC            uint32 `json:"crc"`
	CRCOK          bool   `json:"crcOk"`
	// ComputedCRC is set when CRCOK is false.
	ComputedCRC *uint32 `json:"computedCrc,omitempty"`
	// Problem describes anything else wrong with the batch.
	Problem string      `json:"problem,omitempty"`
	Records []segRecord `json:"records,omitempty"`
}

// segRecord is one record, with --records.
type segRecord struct {
	Offset    int64 `json:"offset"`
	Timestamp int64 `json:"timestamp"`
	// Key is the key as text when it is valid UTF-8, and null otherwise;
	// KeyBase64 holds a key that is not text.
	Key         *string     `json:"key"`
	KeyBase64   string      `json:"keyBase64,omitempty"`
	KeyLength   int         `json:"keyLength"`   // -1 for a null key
	ValueLength int         `json:"valueLength"` // -1 for a null value (tombstone)
	Headers     []segHeader `json:"headers,omitempty"`
}

type segHeader struct {
	Key string `json:"key"`
	// Value is the value as text when it is valid UTF-8; ValueBase64
	// otherwise.
	Value       *string `json:"value"`
	ValueBase64 string  `json:"valueBase64,omitempty"`
}

// segSummary is the summary of "inspect segment".
type segSummary struct {
	File string `json:"file"`
	// FileBytes is the file's size; ValidBytes the bytes of whole
	// batches from the start.
	FileBytes  int64 `json:"fileBytes"`
	ValidBytes int64 `json:"validBytes"`
	// NameOffset is the base offset in the file name, or -1.
	NameOffset  int64 `json:"nameOffset"`
	Batches     int   `json:"batches"`
	Records     int64 `json:"records"`
	FirstOffset int64 `json:"firstOffset"` // -1 when empty
	LastOffset  int64 `json:"lastOffset"`  // -1 when empty
	// MinTimestamp and MaxTimestamp span the batches' first and max
	// timestamps; -1 when none.
	MinTimestamp   int64  `json:"minTimestamp"`
	MaxTimestamp   int64  `json:"maxTimestamp"`
	CRCFailures    int    `json:"crcFailures"`
	OtherProblems  int    `json:"otherProblems"`
	TornTailBytes  int64  `json:"tornTailBytes"`
	TornTailAt     int64  `json:"tornTailPosition,omitempty"`
	TornTailReason string `json:"tornTailReason,omitempty"`
	OK             bool   `json:"ok"`
}

func (s *segSummary) failure() error {
	if s.OK {
		return nil
	}
	var parts []string
	if s.CRCFailures > 0 {
		parts = append(parts, pluralize(s.CRCFailures, "batch fails its CRC", "batches fail their CRC"))
	}
	if s.OtherProblems > 0 {
		parts = append(parts, pluralize(s.OtherProblems, "batch is malformed", "batches are malformed"))
	}
	if s.TornTailBytes > 0 {
		parts = append(parts, fmt.Sprintf("a torn tail of %d bytes at position %d", s.TornTailBytes, s.TornTailAt))
	}
	return fmt.Errorf("%s: %s", s.File, strings.Join(parts, ", "))
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func inspectSegment(args []string, stdout, stderr io.Writer) error {
	fs := newSubFlags("inspect segment", inspectSegmentUsage, stderr)
	asJSON := fs.Bool("json", false, "print JSON: {\"batches\": [...], \"summary\": {...}}")
	records := fs.Bool("records", false, "also print every record, decompressing compressed batches")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want one segment file (FILE.log), got %d arguments", len(pos))
	}
	path := pos[0]
	if !strings.HasSuffix(path, ".log") {
		return usageErrorf("%q is not a segment file: want a .log file of a partition directory", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment: %w", err)
	}
	if st.IsDir() {
		return usageErrorf("%q is a directory, not a segment file", path)
	}
	var out segmentPrinter
	if *asJSON {
		out = &segJSONPrinter{w: bufio.NewWriter(stdout)}
	} else {
		out = &segTextPrinter{w: bufio.NewWriter(stdout), records: *records}
	}
	sum, err := scanSegmentFile(io.LimitReader(f, st.Size()), path, st.Size(), *records, out)
	if err != nil {
		return err
	}
	if err := out.summary(sum); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return sum.failure()
}

// segmentPrinter receives the batches as they are read, so a large
// segment is never held in memory.
type segmentPrinter interface {
	start(file string, size, nameOffset int64) error
	batch(b *segBatch) error
	summary(s *segSummary) error
}

// scanSegmentFile reads the segment from the start and reports each batch
// to out. It continues past a batch that fails its CRC (its length still
// frames the next one), and stops at bytes that do not frame a batch.
func scanSegmentFile(r io.Reader, path string, size int64, withRecords bool, out segmentPrinter) (*segSummary, error) {
	sum := &segSummary{File: path, FileBytes: size, NameOffset: -1, FirstOffset: -1, LastOffset: -1, MinTimestamp: -1, MaxTimestamp: -1}
	if n, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(path), ".log"), 10, 64); err == nil && n >= 0 {
		sum.NameOffset = n
	}
	if err := out.start(path, size, sum.NameOffset); err != nil {
		return nil, fmt.Errorf("write output: %w", err)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	var buf []byte
	pos := int64(0)
	prevNext := sum.NameOffset
	torn := func(reason string) {
		sum.TornTailBytes, sum.TornTailAt, sum.TornTailReason = size-pos, pos, reason
	}
	for pos < size {
		head, err := br.Peek(batch.LogOverhead)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read segment at %d: %w", pos, err)
		}
		if len(head) < batch.LogOverhead {
			torn(fmt.Sprintf("%d bytes cannot hold a batch's offset and length", size-pos))
			break
		}
		n, _ := batch.PeekSize(head)
		if n < batch.HeaderSize {
			torn(fmt.Sprintf("the batch at %d declares %d bytes, less than a batch header", pos, n))
			break
		}
		if int64(n) > size-pos {
			torn(fmt.Sprintf("the batch at %d declares %d bytes, only %d remain", pos, n, size-pos))
			break
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		raw := buf[:n]
		if _, err := io.ReadFull(br, raw); err != nil {
			return nil, fmt.Errorf("read segment at %d: %w", pos, err)
		}
		h, err := batch.ParseHeader(raw)
		if err != nil {
			// Not a batch v2 at all: nothing after it can be framed.
			torn(fmt.Sprintf("the bytes at %d are not a record batch: %v", pos, err))
			break
		}
		b := describeBatch(pos, &h, raw)
		if !b.CRCOK {
			sum.CRCFailures++
		}
		switch {
		case b.Problem != "":
		case prevNext >= 0 && h.BaseOffset < prevNext:
			b.Problem = fmt.Sprintf("base offset %d is below the expected %d (offsets must increase)", h.BaseOffset, prevNext)
		}
		if withRecords && b.CRCOK && b.Problem == "" {
			if err := collectRecords(&h, raw, b); err != nil {
				b.Problem = fmt.Sprintf("records: %v", err)
			}
		}
		if b.Problem != "" {
			sum.OtherProblems++
		}
		sum.Batches++
		sum.Records += int64(h.RecordCount)
		if sum.FirstOffset < 0 {
			sum.FirstOffset = h.BaseOffset
		}
		sum.LastOffset = max(sum.LastOffset, h.LastOffset())
		if h.BaseTimestamp >= 0 && (sum.MinTimestamp < 0 || h.BaseTimestamp < sum.MinTimestamp) {
			sum.MinTimestamp = h.BaseTimestamp
		}
		sum.MaxTimestamp = max(sum.MaxTimestamp, h.MaxTimestamp)
		prevNext = h.NextOffset()
		pos += int64(n)
		sum.ValidBytes = pos
		if err := out.batch(b); err != nil {
			return nil, fmt.Errorf("write output: %w", err)
		}
	}
	sum.OK = sum.CRCFailures == 0 && sum.OtherProblems == 0 && sum.TornTailBytes == 0
	return sum, nil
}

// describeBatch decodes the header fields and checks the CRC and the
// header's own consistency.
func describeBatch(pos int64, h *batch.Header, raw []byte) *segBatch {
	b := &segBatch{
		Position:       pos,
		BaseOffset:     h.BaseOffset,
		LastOffset:     h.LastOffset(),
		RecordCount:    h.RecordCount,
		FirstTimestamp: h.BaseTimestamp,
		MaxTimestamp:   h.MaxTimestamp,
		TimestampType:  "create",
		Compression:    h.Compression().String(),
		ProducerID:     h.ProducerID,
		ProducerEpoch:  h.ProducerEpoch,
		BaseSequence:   h.BaseSequence,
		Transactional:  h.IsTransactional(),
		Control:        h.IsControl(),
		LeaderEpoch:    h.PartitionLeaderEpoch,
		Size:           len(raw),
		CRC:            h.CRC,
	}
	if h.LogAppendTime() {
		b.TimestampType = "append"
	}
	computed := batch.Checksum(raw)
	b.CRCOK = computed == h.CRC
	if !b.CRCOK {
		b.ComputedCRC = &computed
		return b
	}
	if _, err := batch.Validate(raw); err != nil {
		b.Problem = err.Error()
	}
	return b
}

// collectRecords decodes the batch's records into b.
func collectRecords(h *batch.Header, raw []byte, b *segBatch) error {
	return batch.Records(raw, func(r batch.Record) error {
		rec := segRecord{
			Offset:      h.BaseOffset + int64(r.OffsetDelta),
			Timestamp:   h.BaseTimestamp + r.TimestampDelta,
			KeyLength:   -1,
			ValueLength: -1,
		}
		if h.LogAppendTime() {
			rec.Timestamp = h.MaxTimestamp // Kafka: every record has the batch's append time
		}
		if r.Key != nil {
			rec.KeyLength = len(r.Key)
			rec.Key, rec.KeyBase64 = textOrBase64(r.Key)
		}
		if r.Value != nil {
			rec.ValueLength = len(r.Value)
		}
		for _, hd := range r.Headers {
			sh := segHeader{Key: hd.Key}
			if hd.Value != nil {
				sh.Value, sh.ValueBase64 = textOrBase64(hd.Value)
			}
			rec.Headers = append(rec.Headers, sh)
		}
		b.Records = append(b.Records, rec)
		return nil
	})
}

func textOrBase64(v []byte) (*string, string) {
	if utf8.Valid(v) {
		s := string(v)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(v)
}

// segTextPrinter prints a fixed-width table; with records, each batch's
// records follow its row, indented.
type segTextPrinter struct {
	w       *bufio.Writer
	records bool
	rows    int
}

const segRowFormat = "%-10s %-10s %-10s %6s  %-24s %-24s %-6s %-6s %-18s %-9s %6s %8s  %s\n"

func (p *segTextPrinter) start(file string, size, nameOffset int64) error {
	base := "not in the file name"
	if nameOffset >= 0 {
		base = strconv.FormatInt(nameOffset, 10)
	}
	fmt.Fprintf(p.w, "Segment %s: %d bytes, base offset %s\n\n", file, size, base)
	fmt.Fprintf(p.w, segRowFormat, "POSITION", "BASE", "LAST", "COUNT", "FIRST TIMESTAMP", "MAX TIMESTAMP", "TSTYPE",
		"CODEC", "PRODUCER/EPOCH/SEQ", "FLAGS", "LEPOCH", "SIZE", "CRC")
	return nil
}

func (p *segTextPrinter) batch(b *segBatch) error {
	producer := "-"
	if b.ProducerID >= 0 {
		producer = fmt.Sprintf("%d/%d/%d", b.ProducerID, b.ProducerEpoch, b.BaseSequence)
	}
	var flags []string
	if b.Transactional {
		flags = append(flags, "txn")
	}
	if b.Control {
		flags = append(flags, "control")
	}
	if len(flags) == 0 {
		flags = []string{"-"}
	}
	crc := "ok"
	if !b.CRCOK {
		crc = fmt.Sprintf("BAD: stored %08x, computed %08x", b.CRC, *b.ComputedCRC)
	}
	fmt.Fprintf(p.w, segRowFormat, strconv.FormatInt(b.Position, 10), strconv.FormatInt(b.BaseOffset, 10),
		strconv.FormatInt(b.LastOffset, 10), strconv.Itoa(int(b.RecordCount)), fmtTimestamp(b.FirstTimestamp),
		fmtTimestamp(b.MaxTimestamp), b.TimestampType, b.Compression, producer, strings.Join(flags, ","),
		strconv.Itoa(int(b.LeaderEpoch)), strconv.Itoa(b.Size), crc)
	if b.Problem != "" {
		fmt.Fprintf(p.w, "           PROBLEM: %s\n", b.Problem)
	}
	if p.records {
		if !b.CRCOK {
			fmt.Fprintf(p.w, "           (records not decoded: the CRC fails)\n")
		}
		for _, r := range b.Records {
			fmt.Fprintf(p.w, "    | offset %d  timestamp %s  key %s  value %s", r.Offset, fmtTimestamp(r.Timestamp),
				fmtKey(r), fmtLen(r.ValueLength))
			if len(r.Headers) > 0 {
				hs := make([]string, len(r.Headers))
				for i, h := range r.Headers {
					hs[i] = strconv.Quote(h.Key) + "=" + fmtHeaderValue(h)
				}
				fmt.Fprintf(p.w, "  headers [%s]", strings.Join(hs, " "))
			}
			fmt.Fprintln(p.w)
		}
	}
	p.rows++
	if p.rows%1024 == 0 {
		return p.w.Flush()
	}
	return nil
}

func fmtKey(r segRecord) string {
	switch {
	case r.KeyLength < 0:
		return "null"
	case r.Key != nil:
		return strconv.Quote(*r.Key)
	}
	return "base64:" + r.KeyBase64
}

func fmtHeaderValue(h segHeader) string {
	switch {
	case h.Value != nil:
		return strconv.Quote(*h.Value)
	case h.ValueBase64 != "":
		return "base64:" + h.ValueBase64
	}
	return "null"
}

func fmtLen(n int) string {
	if n < 0 {
		return "null"
	}
	return fmt.Sprintf("%d bytes", n)
}

func (p *segTextPrinter) summary(s *segSummary) error {
	fmt.Fprintf(p.w, "\nSummary: %s, %d records, %d of %d bytes in whole batches\n",
		pluralize(s.Batches, "batch", "batches"), s.Records, s.ValidBytes, s.FileBytes)
	if s.Batches > 0 {
		fmt.Fprintf(p.w, "  offsets     %d to %d\n", s.FirstOffset, s.LastOffset)
		fmt.Fprintf(p.w, "  timestamps  %s to %s\n", fmtTimestamp(s.MinTimestamp), fmtTimestamp(s.MaxTimestamp))
	}
	fmt.Fprintf(p.w, "  CRC failures   %d\n", s.CRCFailures)
	if s.OtherProblems > 0 {
		fmt.Fprintf(p.w, "  other problems %d (see PROBLEM lines)\n", s.OtherProblems)
	}
	if s.TornTailBytes > 0 {
		fmt.Fprintf(p.w, "  torn tail      %d bytes at position %d: %s\n", s.TornTailBytes, s.TornTailAt, s.TornTailReason)
	} else {
		fmt.Fprintf(p.w, "  torn tail      none\n")
	}
	if s.OK {
		fmt.Fprintf(p.w, "OK: every batch is whole and passes its CRC\n")
	} else {
		fmt.Fprintf(p.w, "FAILED: %v\n", s.failure())
	}
	return p.w.Flush()
}

// segJSONPrinter streams {"file": ..., "batches": [...], "summary": {...}}.
type segJSONPrinter struct {
	w    *bufio.Writer
	rows int
}

func (p *segJSONPrinter) start(file string, size, nameOffset int64) error {
	name, _ := json.Marshal(file)
	fmt.Fprintf(p.w, "{\n  \"file\": %s,\n  \"batches\": [", name)
	return nil
}

func (p *segJSONPrinter) batch(b *segBatch) error {
	line, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if p.rows > 0 {
		p.w.WriteByte(',')
	}
	p.w.WriteString("\n    ")
	p.w.Write(line)
	p.rows++
	if p.rows%1024 == 0 {
		return p.w.Flush()
	}
	return nil
}

func (p *segJSONPrinter) summary(s *segSummary) error {
	line, err := json.MarshalIndent(s, "  ", "  ")
	if err != nil {
		return err
	}
	if p.rows > 0 {
		p.w.WriteString("\n  ")
	}
	fmt.Fprintf(p.w, "],\n  \"summary\": %s\n}\n", line)
	return p.w.Flush()
}

// ---- manifest ----

const inspectManifestUsage = `Usage: tiercel inspect manifest [store flags] [--json] --topic T --partition N

Prints a partition's remote manifest (topics/<topic>-<topicId>/<N>/manifest):
its version, the leader epoch that last wrote it, the remote log start
offset, the high watermark at that write, and every offloaded segment with
its offsets, size, timestamps (the first batch's max timestamp and the
largest), the leader epoch that uploaded it, its slice of the leader-epoch
history, its object key and when it was recorded. The topic id is looked up
in the cluster metadata; --topic-id names it directly, e.g. for a deleted
topic whose objects remain.
`

type manifestJSON struct {
	Object    objectJSON        `json:"object"`
	Topic     string            `json:"topic"`
	TopicID   string            `json:"topicId"`
	Partition int32             `json:"partition"`
	Manifest  *tiering.Manifest `json:"manifest"`
}

func inspectManifest(args []string, stdout, stderr io.Writer) error {
	fs := newSubFlags("inspect manifest", inspectManifestUsage, stderr)
	var sf storeFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON: the object's attributes and the manifest as stored")
	topic := fs.String("topic", "", "topic `NAME` (required)")
	partition := fs.Int("partition", -1, "partition `N`umber (required)")
	topicID := fs.String("topic-id", "", "topic `ID` (base64, 22 characters); skips the metadata lookup")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	if *topic == "" {
		return usageErrorf("--topic is required")
	}
	if *partition < 0 || *partition > 1<<31-1 {
		return usageErrorf("--partition is required and must be a partition number, got %d", *partition)
	}
	if *topicID != "" {
		var id controller.TopicID
		if err := id.UnmarshalText([]byte(*topicID)); err != nil {
			return usageErrorf("--topic-id: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, _, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	id := *topicID
	if id == "" {
		md, _, _, err := readMetadata(ctx, st)
		if err != nil {
			return err
		}
		t := md.Topics[*topic]
		if t == nil {
			return usageErrorf("--topic: no topic %q in the cluster metadata (topics: %s); use --topic-id for a deleted topic",
				*topic, strings.Join(md.TopicNames(), ", "))
		}
		if *partition >= len(t.Partitions) {
			return usageErrorf("--partition: topic %q has %d partitions, there is no partition %d", *topic, len(t.Partitions), *partition)
		}
		id = t.ID.String()
	}
	pid := tiering.PartitionID{Topic: *topic, TopicID: id, Partition: int32(*partition)}
	body, attrs, err := readObject(ctx, st, pid.ManifestKey())
	if objstore.IsNotFound(err) {
		return fmt.Errorf("no manifest at %s: partition %s has offloaded nothing (remote.storage.enable off, no segment sealed yet, or the topic id is not this topic's)", pid.ManifestKey(), pid)
	}
	if err != nil {
		return err
	}
	var m tiering.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decode %s: %w", pid.ManifestKey(), err)
	}
	out := manifestJSON{Object: describeObject(pid.ManifestKey(), attrs, time.Now()), Topic: pid.Topic, TopicID: id,
		Partition: pid.Partition, Manifest: &m}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	printManifest(stdout, &out)
	return nil
}

func printManifest(w io.Writer, out *manifestJSON) {
	m := out.Manifest
	fmt.Fprintf(w, "Manifest %s\n", out.Object.text())
	fmt.Fprintf(w, "Topic %s (id %s), partition %d\n", out.Topic, out.TopicID, out.Partition)
	fmt.Fprintf(w, "Version %d, written by leader epoch %d\n", m.Version, m.LeaderEpoch)
	fmt.Fprintf(w, "Log start offset %d, high watermark %d (at the last write)\n", m.LogStartOffset, m.HighWatermark)
	if m.Empty() {
		fmt.Fprintln(w, "No segments.")
		return
	}
	fmt.Fprintf(w, "%s, %s, offsets %d to %d (next %d)\n\n", pluralize(len(m.Segments), "segment", "segments"),
		humanBytes(m.Size()), m.StartOffset(), m.NextOffset()-1, m.NextOffset())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BASE\tNEXT\tSIZE\tMIN TIMESTAMP\tMAX TIMESTAMP\tLEADER EPOCH\tEPOCHS (epoch@start)\tUPLOADED\tSNAPSHOT\tKEY")
	for _, s := range m.Segments {
		eps := make([]string, len(s.Epochs))
		for i, e := range s.Epochs {
			eps[i] = fmt.Sprintf("%d@%d", e.Epoch, e.StartOffset)
		}
		snap := "no"
		if s.HasSnapshot {
			snap = "yes"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.BaseOffset, s.NextOffset, s.Size,
			fmtTimestamp(s.MinTimestamp), fmtTimestamp(s.MaxTimestamp), s.LeaderEpoch, strings.Join(eps, ","),
			fmtTimestamp(s.UploadedMs), snap, s.Key)
	}
	tw.Flush()
}

// ---- metadata ----

const inspectMetadataUsage = `Usage: tiercel inspect metadata [store flags] [--json]

Prints the cluster metadata document (cluster/metadata): the cluster id,
version, the controller epoch that wrote it, the next producer id, and every
topic with its id, configs (overrides only; the rest are broker defaults)
and partitions (replicas, leader, leader epoch, ISR, partition epoch).
`

type metadataJSON struct {
	Object   objectJSON      `json:"object"`
	Document json.RawMessage `json:"document"`
}

func inspectMetadata(args []string, stdout, stderr io.Writer) error {
	fs := newSubFlags("inspect metadata", inspectMetadataUsage, stderr)
	var sf storeFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON: the object's attributes and the document as stored")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, _, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	md, raw, attrs, err := readMetadata(ctx, st)
	if err != nil {
		return err
	}
	obj := describeObject(controller.MetadataKey, attrs, time.Now())
	if *asJSON {
		return writeJSON(stdout, metadataJSON{Object: obj, Document: raw})
	}
	fmt.Fprintf(stdout, "Cluster metadata %s\n", obj.text())
	fmt.Fprintf(stdout, "Cluster id %s, version %d, controller epoch %d, next producer id %d\n",
		md.ClusterID, md.Version, md.ControllerEpoch, md.NextProducerID)
	if len(md.Topics) == 0 {
		fmt.Fprintln(stdout, "No topics.")
		return nil
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tID\tPARTITIONS\tREPLICATION\tINTERNAL\tCONFIGS")
	for _, name := range md.TopicNames() {
		t := md.Topics[name]
		rf := 0
		for _, p := range t.Partitions {
			rf = max(rf, len(p.Replicas))
		}
		keys := make([]string, 0, len(t.Configs))
		for k := range t.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		cfgs := make([]string, len(keys))
		for i, k := range keys {
			cfgs[i] = k + "=" + t.Configs[k]
		}
		if len(cfgs) == 0 {
			cfgs = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", name, t.ID, len(t.Partitions), rf, yesNo(t.Internal), strings.Join(cfgs, ","))
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tLEADER EPOCH\tPARTITION EPOCH\tREPLICAS\tISR")
	for _, name := range md.TopicNames() {
		for i, p := range md.Topics[name].Partitions {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", name, i, p.Leader, p.LeaderEpoch, p.PartitionEpoch, ids(p.Replicas), ids(p.ISR))
		}
	}
	tw.Flush()
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ids(v []int32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(int(x))
	}
	return "[" + strings.Join(s, ",") + "]"
}

// ---- lease ----

const inspectLeaseUsage = `Usage: tiercel inspect lease [store flags] [--json]

Prints the controller lease (cluster/lease): the broker holding it (-1 once
released at shutdown), the controller epoch, the renewal counter, the TTL,
and the object's last-modified time and age. The age is measured with this
machine's clock against the store's timestamp (whole seconds on S3); brokers
judge expiry on their own monotonic clocks, by watching the ETag change, so
the age here is a guide, not the brokers' verdict.
`

// leaseDocJSON mirrors the lease object (broker/controller's leaseDoc).
type leaseDocJSON struct {
	Holder  int32 `json:"holder"`
	Epoch   int64 `json:"epoch"`
	Counter int64 `json:"counter"`
	TTLMs   int64 `json:"ttlMs"`
}

type leaseJSON struct {
	Object   objectJSON      `json:"object"`
	Document json.RawMessage `json:"document"`
	// Released is true when the holder gave the lease up (holder -1).
	Released bool `json:"released"`
	// Expired is true when the object is older than the TTL by this
	// machine's clock: another broker may take the lease over.
	Expired bool `json:"expired"`
}

func inspectLease(args []string, stdout, stderr io.Writer) error {
	fs := newSubFlags("inspect lease", inspectLeaseUsage, stderr)
	var sf storeFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON: the object's attributes, the document as stored, and whether it is released or expired")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, _, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	raw, attrs, err := readObject(ctx, st, controller.LeaseKey)
	if objstore.IsNotFound(err) {
		return fmt.Errorf("no lease at %s: no broker has claimed the controller role in this store", controller.LeaseKey)
	}
	if err != nil {
		return err
	}
	var d leaseDocJSON
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("decode %s: %w", controller.LeaseKey, err)
	}
	obj := describeObject(controller.LeaseKey, attrs, time.Now())
	ttl := time.Duration(d.TTLMs) * time.Millisecond
	out := leaseJSON{Object: obj, Document: raw, Released: d.Holder < 0,
		Expired: d.Holder >= 0 && time.Duration(obj.AgeMs)*time.Millisecond > ttl}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "Controller lease %s\n", obj.text())
	holder := fmt.Sprintf("broker %d", d.Holder)
	if d.Holder < 0 {
		holder = "none (released)"
	}
	fmt.Fprintf(stdout, "Holder %s, controller epoch %d, renewal counter %d, TTL %s\n", holder, d.Epoch, d.Counter, ttl)
	age := roundAge(time.Duration(obj.AgeMs) * time.Millisecond)
	switch {
	case out.Released:
		fmt.Fprintln(stdout, "State: released at shutdown; the next broker to try takes it with a new epoch.")
	case out.Expired:
		fmt.Fprintf(stdout, "State: not renewed for %s, longer than its TTL: another broker may take it over.\n", age)
	default:
		fmt.Fprintf(stdout, "State: renewed %s ago, within its TTL.\n", age)
	}
	fmt.Fprintln(stdout, "(Age by this machine's clock against the store's timestamp; brokers judge expiry on their own monotonic clocks.)")
	return nil
}
