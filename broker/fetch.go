package broker

// Fetch: versions 4 to 17.
//
// v4 is the first version that returns record batch v2 and the last stable
// offset; v13 addresses topics by id; v17 is Kafka 3.9's maximum. Fetch
// sessions (KIP-227) are answered with session id 0, which clients take to
// mean "no session": they keep sending full fetch requests.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiercel/tiercel/broker/controller"
	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/tiering"
	"github.com/tiercel/tiercel/wire"
)

const (
	fetchMinVersion = 4
	fetchMaxVersion = 17
)

// fetch is one Fetch request, resolved when the connection's writer gets
// to it: it reads, and if fewer than min.bytes are available it parks
// until an append or a high-watermark move wakes it, or max.wait.ms ends.
type fetch struct {
	b        *Broker
	in       *kmsg.FetchRequest
	version  int16
	replica  int32 // the fetching broker, or -1 for a consumer
	deadline time.Time
	maxBytes int
	received time.Time
}

func (b *Broker) handleFetch(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.FetchRequest)
	f := &fetch{b: b, in: in, version: req.Version, replica: -1, received: req.Received}
	if req.Version >= 15 {
		f.replica = in.ReplicaState.ID
	} else {
		f.replica = in.ReplicaID
	}
	f.maxBytes = math.MaxInt32
	if in.MaxBytes > 0 {
		f.maxBytes = int(in.MaxBytes)
	}
	wait := time.Duration(max(in.MaxWaitMillis, 0)) * time.Millisecond
	f.deadline = req.Received.Add(wait)
	if req.Version >= 7 && in.SessionID != 0 && in.SessionEpoch != -1 {
		// We never hand out sessions, so any id the client names is not
		// ours; it will start over with a full fetch.
		resp := &wire.FetchResponse{Version: req.Version, ErrorCode: kerr.FetchSessionIDNotFound.Code}
		return resp
	}
	return f
}

// Frame reads the partitions and, when min.bytes is not met, waits.
func (f *fetch) Frame(ctx context.Context) (*wire.Frame, error) {
	ctx, span := f.b.tracer.Start(ctx, "fetch", trace.WithAttributes(
		attribute.Int("topics", len(f.in.Topics)), attribute.Int("replica", int(f.replica))))
	defer span.End()
	// Register before the first read, so an append between the read and
	// the wait is not missed.
	wake := make(chan struct{}, 1)
	parts := f.partitions()
	for _, p := range parts {
		if f.replica >= 0 {
			p.addFollowerWaiter(wake)
		} else {
			p.addWaiter(wake)
		}
	}
	defer func() {
		for _, p := range parts {
			if f.replica >= 0 {
				p.removeFollowerWaiter(wake)
			} else {
				p.removeWaiter(wake)
			}
		}
	}()
	var timer *time.Timer
	for {
		resp, n, hasErr := f.read(ctx)
		wait := time.Until(f.deadline)
		if n >= int64(f.in.MinBytes) || hasErr || wait <= 0 || len(parts) == 0 {
			span.SetAttributes(attribute.Int64("bytes", n))
			for i, ts := range resp.topics {
				if ts != nil && resp.topicBytes[i] > 0 {
					f.b.metrics.bytesOut.Add(context.Background(), resp.topicBytes[i], ts.attrs)
				}
			}
			return resp.Frame(ctx)
		}
		resp.release()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		f.b.metrics.parkedFetches.Add(1)
		select {
		case <-wake:
		case <-timer.C:
			f.deadline = time.Time{} // answer with whatever is there now
		case <-ctx.Done():
			f.b.metrics.parkedFetches.Add(-1)
			return nil, ctx.Err()
		}
		f.b.metrics.parkedFetches.Add(-1)
	}
}

// partitions lists the hosted partitions the request names, to park on.
func (f *fetch) partitions() []*partition {
	var out []*partition
	st := f.b.current()
	for _, t := range f.in.Topics {
		ts := f.topic(st, &t)
		if ts == nil {
			continue
		}
		for _, rp := range t.Partitions {
			if rp.Partition >= 0 && int(rp.Partition) < len(ts.partitions) && ts.partitions[rp.Partition] != nil {
				out = append(out, ts.partitions[rp.Partition])
			}
		}
	}
	return out
}

func (f *fetch) topic(st *localState, t *kmsg.FetchRequestTopic) *topicState {
	if f.version >= 13 {
		return st.byID[controller.TopicID(t.TopicID)]
	}
	return st.topics[t.Topic]
}

// fetchResponse wraps the wire response so it can drop its file
// references when a waiting fetch reads again. topics and topicBytes,
// by topic index, feed the bytes-out metric.
type fetchResponse struct {
	*wire.FetchResponse
	topics     []*topicState
	topicBytes []int64
}

func (r fetchResponse) release() {
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			p := &r.Topics[i].Partitions[j]
			if p.Release != nil {
				p.Release()
				p.Release = nil
			}
		}
	}
}

// remoteFetch is one partition of a fetch that reads below the local log.
type remoteFetch struct {
	p       *partition
	topic   int // index into the response's topics
	part    int // index into the topic's partitions
	offset  int64
	limit   int
	records tiering.ReadResult
	err     error
}

// remoteFetchWait bounds how long a fetch waits for the remote tier; the
// load goes on in the background and lands in the cache for the retry.
const (
	remoteFetchMinWait = 500 * time.Millisecond
	remoteFetchMaxWait = 5 * time.Second
)

// read builds a response from what is readable now. It returns the
// record bytes found and whether any partition has an error, in which case
// Kafka answers at once.
func (f *fetch) read(ctx context.Context) (fetchResponse, int64, bool) {
	resp := &wire.FetchResponse{Version: f.version}
	st := f.b.current()
	var total int64
	hasErr := false
	leaders := map[int32]bool{}
	var remote []*remoteFetch
	out := fetchResponse{FetchResponse: resp, topics: make([]*topicState, len(f.in.Topics)), topicBytes: make([]int64, len(f.in.Topics))}
	for ti, t := range f.in.Topics {
		ft := wire.FetchTopic{Topic: t.Topic, TopicID: t.TopicID}
		ts := f.topic(st, &t)
		out.topics[ti] = ts
		before := total
		for _, rp := range t.Partitions {
			fp := wire.NewFetchPartition(rp.Partition)
			rf, err := f.readPartition(ts, &rp, &fp, &total)
			if err != nil {
				hasErr = true
				fp.Meta.ErrorCode = errCode(f.b.logger, err)
				if errors.Is(err, kerr.NotLeaderForPartition) && ts != nil && f.version >= 12 {
					if leader, epoch, ok := f.b.leaderHint(ts.meta.Name, rp.Partition); ok {
						fp.Meta.CurrentLeader.LeaderID, fp.Meta.CurrentLeader.LeaderEpoch = leader, epoch
						leaders[leader] = true
					}
				}
			}
			if rf != nil {
				rf.topic, rf.part = ti, len(ft.Partitions)
				remote = append(remote, rf)
			}
			ft.Partitions = append(ft.Partitions, fp)
		}
		if ts != nil && f.version < 13 {
			ft.Topic = ts.meta.Name
		}
		resp.Topics = append(resp.Topics, ft)
		out.topicBytes[ti] = total - before
	}
	if len(remote) > 0 {
		if f.readRemote(ctx, remote) {
			hasErr = true
		}
		// In request order, within the response's byte budget: the first
		// partition with data gets its batch whole (KIP-74); a remote
		// result that does not fit is dropped, and will be a cache hit on
		// the next fetch.
		for _, rf := range remote {
			part := &resp.Topics[rf.topic].Partitions[rf.part]
			switch {
			case rf.err != nil:
				part.Meta.ErrorCode = errCode(f.b.logger, rf.err)
			case rf.records.Len() == 0:
			default:
				if n := int64(rf.records.Len()); total == 0 || total+n <= int64(f.maxBytes) {
					part.Bytes = rf.records.Pieces
					total += n
					out.topicBytes[rf.topic] += n
				}
			}
		}
	}
	if f.version >= 16 && len(leaders) > 0 {
		resp.Brokers = f.b.fetchBrokers(leaders)
	}
	return out, total, hasErr
}

// readRemote runs the remote reads of a fetch concurrently on the tier's
// bounded pool. It reports whether any failed.
func (f *fetch) readRemote(ctx context.Context, reads []*remoteFetch) bool {
	wait := time.Duration(f.in.MaxWaitMillis) * time.Millisecond
	wait = min(max(wait, remoteFetchMinWait), remoteFetchMaxWait)
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var wg sync.WaitGroup
	for _, rf := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, span := f.b.tracer.Start(rctx, "fetch.remote", trace.WithAttributes(
				attribute.String("topic", rf.p.topic), attribute.Int("partition", int(rf.p.index)), attribute.Int64("offset", rf.offset)))
			began := time.Now()
			rf.records, rf.err = rf.p.readRemote(sctx, rf.offset, rf.limit, true)
			f.b.metrics.remoteFetchDuration.Record(context.Background(), time.Since(began).Seconds())
			f.b.metrics.remoteFetches.Add(context.Background(), 1, metric.WithAttributes(attribute.String("topic", rf.p.topic)))
			if rf.err != nil {
				span.RecordError(rf.err)
			}
			span.SetAttributes(attribute.Int("bytes", rf.records.Len()))
			span.End()
		}()
	}
	wg.Wait()
	failed := false
	for _, rf := range reads {
		switch {
		case rf.err == nil:
		case errors.Is(rf.err, context.DeadlineExceeded) && ctx.Err() == nil:
			// Slow, not broken: answer without records; the client asks
			// again and the chunk is in the cache by then.
			rf.err = nil
		case errors.Is(rf.err, tiering.ErrNotRemote):
			rf.err = fmt.Errorf("%w: %v", kerr.OffsetOutOfRange, rf.err)
			failed = true
		default:
			if errors.Is(rf.err, tiering.ErrCorrupt) {
				rf.p.logger.Error("remote data failed verification; not served", "offset", rf.offset, "err", rf.err)
			} else {
				rf.p.logger.Warn("remote read failed", "offset", rf.offset, "err", rf.err)
			}
			// Retriable for clients; never wrong bytes.
			rf.err = fmt.Errorf("%w: remote read: %v", kerr.KafkaStorageError, rf.err)
			failed = true
		}
	}
	return failed
}

// replicaFetch handles what is particular to a follower's fetch on the
// leader: only assigned replicas may fetch; a follower whose last epoch
// does not match the leader's history learns where to truncate
// (DivergingEpoch, KIP-320) and gets no records; otherwise its fetch
// offset tells the leader its log end, which may move the high watermark.
func (f *fetch) replicaFetch(p *partition, rp *kmsg.FetchRequestTopicPartition, out *wire.FetchPartition) error {
	p.mu.Lock()
	ok := p.repl != nil && p.repl.IsReplica(f.replica)
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: broker %d is not a replica", kerr.NotLeaderForPartition, f.replica)
	}
	if f.version >= 12 && rp.LastFetchedEpoch >= 0 {
		epoch, end := p.log.EndOffsetForEpoch(rp.LastFetchedEpoch)
		if epoch < 0 {
			// We know no epoch at or below the follower's: its whole log
			// predates ours. It truncates to our log start.
			epoch, end = rp.LastFetchedEpoch, p.logStartOffset()
		}
		if epoch != rp.LastFetchedEpoch || end < rp.FetchOffset {
			out.Meta.DivergingEpoch.Epoch, out.Meta.DivergingEpoch.EndOffset = epoch, end
			return nil
		}
	}
	f.b.followerFetched(p, f.replica, rp.FetchOffset)
	out.Meta.HighWatermark = p.HighWatermark()
	return nil
}

// readPartition fills out from the local log, or returns a remoteFetch
// when the offset is below the local log start but in the remote tier.
func (f *fetch) readPartition(ts *topicState, rp *kmsg.FetchRequestTopicPartition, out *wire.FetchPartition, total *int64) (*remoteFetch, error) {
	if ts == nil {
		if f.version >= 13 {
			return nil, kerr.UnknownTopicID
		}
		return nil, kerr.UnknownTopicOrPartition
	}
	if rp.Partition < 0 || int(rp.Partition) >= len(ts.partitions) {
		return nil, kerr.UnknownTopicOrPartition
	}
	p := ts.partitions[rp.Partition]
	if p == nil {
		return nil, kerr.NotLeaderForPartition
	}
	isLeader, _, epoch := p.leaderState(f.b.cfg.NodeID)
	if !isLeader {
		return nil, kerr.NotLeaderForPartition
	}
	if f.version >= 9 && rp.CurrentLeaderEpoch >= 0 {
		switch {
		case rp.CurrentLeaderEpoch < epoch:
			return nil, kerr.FencedLeaderEpoch
		case rp.CurrentLeaderEpoch > epoch:
			return nil, kerr.UnknownLeaderEpoch
		}
	}
	hw := p.HighWatermark()
	leo := p.log.EndOffset()
	localStart := p.log.StartOffset()
	logStart := p.logStartOffset()
	out.Meta.HighWatermark = hw
	out.Meta.LastStableOffset = hw // no transactions: everything below the HW is stable
	out.Meta.LogStartOffset = logStart
	if rp.FetchOffset < logStart || rp.FetchOffset > leo {
		return nil, fmt.Errorf("%w: fetch offset %d, log is [%d, %d)", kerr.OffsetOutOfRange, rp.FetchOffset, logStart, leo)
	}
	remaining := f.maxBytes - int(*total)
	if remaining <= 0 {
		return nil, nil
	}
	limit := min(int(rp.PartitionMaxBytes), remaining)
	if limit <= 0 {
		return nil, nil
	}
	if f.replica >= 0 {
		if err := f.replicaFetch(p, rp, out); err != nil || out.Meta.DivergingEpoch.EndOffset >= 0 {
			return nil, err
		}
	}
	if rp.FetchOffset < localStart {
		if f.replica >= 0 {
			// A follower below the leader's local log rebuilds from the
			// remote tier itself (KIP-405).
			return nil, kerr.OffsetMovedToTieredStorage
		}
		return &remoteFetch{p: p, offset: rp.FetchOffset, limit: limit}, nil
	}
	maxOffset := hw
	if f.replica >= 0 {
		maxOffset = leo
	}
	// KIP-74: the first batch of the first partition with data is sent
	// whole even past the limits, so a large batch cannot stall a client.
	r, err := p.log.Read(rp.FetchOffset, limit, maxOffset, *total == 0)
	if err != nil {
		if errors.Is(err, plog.ErrOffsetOutOfRange) {
			return nil, fmt.Errorf("%w: %v", kerr.OffsetOutOfRange, err)
		}
		return nil, fmt.Errorf("%w: read %s-%d: %v", kerr.KafkaStorageError, p.topic, p.index, err)
	}
	if r.Size == 0 {
		r.Release()
		return nil, nil
	}
	out.File, out.FileOff, out.FileLen, out.Release = r.File, r.Position, r.Size, r.Release
	*total += r.Size
	return nil, nil
}
