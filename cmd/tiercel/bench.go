package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const benchUsage = `Usage: tiercel bench produce|consume|e2e [flags]
       tiercel bench serve-kfake [--port N]

Drives load at a Kafka-compatible broker with the franz-go client (kgo) and
prints a summary: records, bytes, seconds, MB/s (1 MB = 1e6 bytes), records/s,
and latency percentiles.

  produce   N producer clients write records; latency is the time from the
            Produce call to the broker's acknowledgement (kgo promise).
  consume   one client reads the topic from the start of every partition with
            ConsumePartitions (no group) until it has read --records, or up
            to the end offsets listed when it starts.
  e2e       produce and consume at once; end-to-end latency is measured from a
            timestamp the producer writes into the first 8 bytes of each
            record to the moment the consumer's poll returns it.

Records carry incompressible bytes: windows over a 16 MiB+ random buffer,
generated once, so no two records in a batch share content.

Every load loop is bounded: by --records, by --duration, and by --timeout when
nothing makes progress. With neither --records nor --duration, produce, e2e
and the prefill of "consume --kfake" write 1000000 records; consume reads up
to the end offsets.

--kfake starts franz-go's in-memory fake broker (kfake, one broker) inside
this process and runs the same workload against it instead of --brokers.
kfake keeps nothing across runs, so "consume --kfake" first fills the topic
with the produce workload (reported as the "prefill" phase). "serve-kfake"
instead serves kfake from a process of its own, to measure it across a
process boundary like a real broker.

Flags:
`

// benchFlags are the bench command's settings.
type benchFlags struct {
	mode string // produce, consume, e2e

	brokers       string
	topic         string
	partitions    int
	partitionsSet bool
	recordSize    int
	keys          bool
	keySize       int
	records       int64
	duration      time.Duration
	acks          string
	compression   string
	linger        time.Duration
	batchMaxBytes int
	maxInflight   int
	maxBuffered   int
	fetchMaxBytes int
	fetchPartMax  int
	producers     int
	rate          float64
	kfake         bool
	json          bool
	timeout       time.Duration

	// Derived from the flags by validate.
	acksOpt  kgo.Acks
	codec    kgo.CompressionCodec
	seeds    []string
	interval time.Duration // progress interval override (tests); 0 = auto
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchFlags, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return nil, usageErrorf("want a mode: produce, consume or e2e")
	}
	f := &benchFlags{mode: args[0]}
	args = args[1:]
	switch f.mode {
	case "produce", "consume", "e2e":
	case "-h", "-help", "--help", "help":
		f.mode, args = "produce", []string{"--help"}
	default:
		fmt.Fprint(stderr, benchUsage)
		return nil, usageErrorf("unknown mode %q: want produce, consume or e2e", f.mode)
	}
	fs := flag.NewFlagSet("bench "+f.mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "seed brokers, `host:port[,host:port...]`")
	fs.StringVar(&f.topic, "topic", "tiercel-bench", "topic to use")
	fs.IntVar(&f.partitions, "partitions", 1, "partition count used when the topic has to be created (kadm CreateTopics)")
	fs.IntVar(&f.recordSize, "record-size", 1024, "value size of each record in `bytes`")
	fs.BoolVar(&f.keys, "keys", false, "give every record a distinct random key (partitioned by key hash); default unkeyed (sticky partitioner)")
	fs.IntVar(&f.keySize, "key-size", 16, "key size in `bytes` with --keys")
	fs.Int64Var(&f.records, "records", 0, "records to produce, or at most to consume (0 = default bound)")
	fs.DurationVar(&f.duration, "duration", 0, "stop the load after this long (0 = no time bound)")
	fs.StringVar(&f.acks, "acks", "1", "producer acks: 0, 1 or all")
	fs.StringVar(&f.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.DurationVar(&f.linger, "linger", 10*time.Millisecond, "producer linger (kgo ProducerLinger; kgo's default is 10ms)")
	fs.IntVar(&f.batchMaxBytes, "batch-max-bytes", 1000012, "max record batch size (kgo ProducerBatchMaxBytes; kgo's default)")
	fs.IntVar(&f.maxInflight, "max-inflight", 1, "produce requests in flight per broker (kgo MaxProduceRequestsInflightPerBroker; >1 needs acks 0 or 1)")
	fs.IntVar(&f.maxBuffered, "max-buffered", 50000, "records a producer client buffers before Produce blocks (kgo MaxBufferedRecords; kgo's default)")
	fs.IntVar(&f.fetchMaxBytes, "fetch-max-bytes", 50<<20, "consumer: max bytes per fetch response (kgo FetchMaxBytes; kgo's default)")
	fs.IntVar(&f.fetchPartMax, "fetch-max-partition-bytes", 1<<20, "consumer: max bytes per partition per fetch (kgo FetchMaxPartitionBytes; kgo's default)")
	fs.IntVar(&f.producers, "producers", 1, "producer clients, each with its own connections")
	fs.Float64Var(&f.rate, "rate", 0, "cap on produced `records/s` over all producers (0 = unlimited)")
	fs.BoolVar(&f.kfake, "kfake", false, "run against an in-process kfake broker instead of --brokers")
	fs.BoolVar(&f.json, "json", false, "print the summary as JSON instead of a table")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "give up when nothing progresses for this long (also the record delivery timeout)")
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err}
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "partitions" {
			f.partitionsSet = true
		}
	})
	if fs.NArg() > 0 {
		return nil, usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *benchFlags) validate() error {
	switch {
	case f.partitions < 1:
		return usageErrorf("--partitions must be at least 1, got %d", f.partitions)
	case f.recordSize < 0 || f.recordSize > 64<<20:
		return usageErrorf("--record-size must be between 0 and 64 MiB, got %d", f.recordSize)
	case f.mode == "e2e" && f.recordSize < 8:
		return usageErrorf("e2e needs --record-size of at least 8 (the timestamp), got %d", f.recordSize)
	case f.keys && (f.keySize < 1 || f.keySize > 1<<20):
		return usageErrorf("--key-size must be between 1 and 1 MiB, got %d", f.keySize)
	case f.records < 0:
		return usageErrorf("--records must not be negative, got %d", f.records)
	case f.duration < 0:
		return usageErrorf("--duration must not be negative, got %v", f.duration)
	case f.producers < 1:
		return usageErrorf("--producers must be at least 1, got %d", f.producers)
	case f.rate < 0:
		return usageErrorf("--rate must not be negative, got %v", f.rate)
	case f.batchMaxBytes < 1:
		return usageErrorf("--batch-max-bytes must be positive, got %d", f.batchMaxBytes)
	case f.maxInflight < 1:
		return usageErrorf("--max-inflight must be at least 1, got %d", f.maxInflight)
	case f.maxBuffered < 1:
		return usageErrorf("--max-buffered must be at least 1, got %d", f.maxBuffered)
	case f.fetchMaxBytes < 1 || f.fetchPartMax < 1:
		return usageErrorf("--fetch-max-bytes and --fetch-max-partition-bytes must be positive")
	case f.linger < 0:
		return usageErrorf("--linger must not be negative, got %v", f.linger)
	case f.timeout <= 0:
		return usageErrorf("--timeout must be positive, got %v", f.timeout)
	case f.topic == "":
		return usageErrorf("--topic must not be empty")
	}
	switch strings.ToLower(f.acks) {
	case "0":
		f.acks, f.acksOpt = "0", kgo.NoAck()
	case "1":
		f.acks, f.acksOpt = "1", kgo.LeaderAck()
	case "all", "-1":
		f.acks, f.acksOpt = "all", kgo.AllISRAcks()
	default:
		return usageErrorf("--acks must be 0, 1 or all, got %q", f.acks)
	}
	if f.acks == "all" && f.maxInflight > 1 {
		return usageErrorf("--max-inflight %d needs --acks 0 or 1: with acks=all kgo's idempotent producer allows 1", f.maxInflight)
	}
	switch strings.ToLower(f.compression) {
	case "none", "":
		f.compression, f.codec = "none", kgo.NoCompression()
	case "gzip":
		f.compression, f.codec = "gzip", kgo.GzipCompression()
	case "snappy":
		f.compression, f.codec = "snappy", kgo.SnappyCompression()
	case "lz4":
		f.compression, f.codec = "lz4", kgo.Lz4Compression()
	case "zstd":
		f.compression, f.codec = "zstd", kgo.ZstdCompression()
	default:
		return usageErrorf("--compression must be none, gzip, snappy, lz4 or zstd, got %q", f.compression)
	}
	for _, s := range strings.Split(f.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			f.seeds = append(f.seeds, s)
		}
	}
	if len(f.seeds) == 0 && !f.kfake {
		return usageErrorf("--brokers must name at least one host:port")
	}
	// Every load loop must end by itself; "consume --kfake" produces first.
	if (f.mode != "consume" || f.kfake) && f.records == 0 && f.duration == 0 {
		f.records = 1000000
	}
	return nil
}

// consumerOpts are the kgo options every consumer client gets.
func (f *benchFlags) consumerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchMaxBytes(int32(f.fetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(f.fetchPartMax)),
	}
}

// producerOpts are the kgo options every producer client gets, for either
// target alike.
func (f *benchFlags) producerOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.RequiredAcks(f.acksOpt),
		kgo.ProducerBatchCompression(f.codec),
		kgo.ProducerLinger(f.linger),
		kgo.ProducerBatchMaxBytes(int32(f.batchMaxBytes)),
		kgo.MaxBufferedRecords(f.maxBuffered),
		kgo.RecordDeliveryTimeout(f.timeout),
		kgo.DefaultProduceTopic(f.topic),
	}
	if f.acks != "all" {
		// kgo's idempotent producer requires acks=all.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(f.maxInflight))
	}
	return opts
}

func bench(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve-kfake" {
		return serveKfake(args[1:], stderr)
	}
	f, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runBench(ctx, f, stdout, stderr)
}

func runBench(ctx context.Context, f *benchFlags, stdout, stderr io.Writer) error {
	res := &benchResult{
		Mode:          f.mode,
		Topic:         f.topic,
		RecordSize:    f.recordSize,
		Keyed:         f.keys,
		Acks:          f.acks,
		Compression:   f.compression,
		Linger:        f.linger.String(),
		BatchMaxBytes: f.batchMaxBytes,
		MaxInflight:   f.maxInflight,
		MaxBuffered:   f.maxBuffered,
		FetchMaxBytes: f.fetchMaxBytes,
		FetchPartMax:  f.fetchPartMax,
		Producers:     f.producers,
		Rate:          f.rate,
		Started:       time.Now().UTC().Format(time.RFC3339),
	}
	if f.keys {
		res.KeySize = f.keySize
	}
	seeds := f.seeds
	if f.kfake {
		c, err := kfake.NewCluster(
			kfake.NumBrokers(1),
			kfake.DefaultNumPartitions(f.partitions),
			kfake.SeedTopics(int32(f.partitions), f.topic),
		)
		if err != nil {
			return fmt.Errorf("starting kfake: %w", err)
		}
		defer c.Close()
		seeds = c.ListenAddrs()
		res.Target = "kfake"
	} else {
		res.Target = "brokers"
	}
	res.Brokers = strings.Join(seeds, ",")

	r := &benchRun{f: f, seeds: seeds, stderr: stderr, res: res}
	var runErr error
	switch f.mode {
	case "produce":
		runErr = r.produce(ctx)
	case "consume":
		runErr = r.consume(ctx)
	case "e2e":
		runErr = r.e2e(ctx)
	}
	if ctx.Err() != nil {
		res.Interrupted = true
	}
	if len(res.Phases) > 0 {
		if f.json {
			if err := res.writeJSON(stdout); err != nil {
				return err
			}
		} else {
			res.writeTable(stdout)
		}
	}
	if runErr != nil {
		return runErr
	}
	for _, p := range res.Phases {
		if p.Errors > 0 {
			return fmt.Errorf("%s: %d records failed; first error: %s", p.Name, p.Errors, p.FirstError)
		}
	}
	return nil
}

// errTimeout reports a load loop that stopped because nothing progressed.
var errTimeout = errors.New("no progress")

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
