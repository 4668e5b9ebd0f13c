package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFetchResponseMatchesKmsg(t *testing.T) {
	dir := t.TempDir()
	file, err := os.Create(filepath.Join(dir, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	fileBytes := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(fileBytes)
	if _, err := file.Write(fileBytes); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(2))
	for v := int16(4); v <= 17; v++ {
		for iter := 0; iter < 20; iter++ {
			ours := FetchResponse{Version: v, ThrottleMillis: rng.Int31(), ErrorCode: int16(rng.Intn(3)), SessionID: rng.Int31()}
			theirs := kmsg.NewPtrFetchResponse()
			theirs.Version, theirs.ThrottleMillis, theirs.ErrorCode, theirs.SessionID = v, ours.ThrottleMillis, ours.ErrorCode, ours.SessionID
			if v >= 16 && rng.Intn(2) == 0 {
				rack := "r1"
				ours.Brokers = []kmsg.FetchResponseBroker{{NodeID: 3, Host: "127.0.0.3", Port: 9092, Rack: &rack}, {NodeID: 4, Host: "h", Port: 1}}
				theirs.Brokers = ours.Brokers
			}
			for ti := 0; ti < rng.Intn(3)+1; ti++ {
				ft := FetchTopic{Topic: "topic-" + string(rune('a'+ti)), TopicID: [16]byte{byte(ti), 1, 2}}
				kt := kmsg.NewFetchResponseTopic()
				kt.Topic, kt.TopicID = ft.Topic, ft.TopicID
				for pi := 0; pi < rng.Intn(4); pi++ {
					p := NewFetchPartition(int32(pi))
					p.Meta.HighWatermark = rng.Int63()
					p.Meta.LastStableOffset = rng.Int63()
					p.Meta.LogStartOffset = rng.Int63()
					p.Meta.PreferredReadReplica = int32(rng.Intn(3) - 1)
					if rng.Intn(3) == 0 {
						p.Meta.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 9}}
					}
					if v >= 12 && rng.Intn(2) == 0 {
						p.Meta.CurrentLeader.LeaderID, p.Meta.CurrentLeader.LeaderEpoch = 2, 5
					}
					if v >= 12 && rng.Intn(3) == 0 {
						p.Meta.DivergingEpoch.Epoch, p.Meta.DivergingEpoch.EndOffset = 1, 100
					}
					km := p.Meta
					var records []byte
					switch rng.Intn(4) {
					case 0: // empty
					case 1:
						p.Bytes = [][]byte{fileBytes[:30], fileBytes[30:100]}
						records = fileBytes[:100]
					case 2:
						off, n := int64(rng.Intn(1000)), int64(rng.Intn(3000)+1)
						p.File, p.FileOff, p.FileLen = file, off, n
						records = fileBytes[off : off+n]
					case 3:
						p.Bytes = [][]byte{fileBytes[10:20]}
						p.File, p.FileOff, p.FileLen = file, 20, 50
						records = fileBytes[10:70]
					}
					km.RecordBatches = records
					if km.RecordBatches == nil {
						km.RecordBatches = []byte{}
					}
					ft.Partitions = append(ft.Partitions, p)
					kt.Partitions = append(kt.Partitions, km)
				}
				ours.Topics = append(ours.Topics, ft)
				theirs.Topics = append(theirs.Topics, kt)
			}
			f, err := ours.Frame(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.AppendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			want := theirs.AppendTo(nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d iter %d: encoding differs from kmsg\n got %x\nwant %x", v, iter, got, want)
			}
			if int64(len(got)) != f.Size() {
				t.Fatalf("v%d: size %d, bytes %d", v, f.Size(), len(got))
			}
		}
	}
}

// testServer starts a server with an echo-ish mux for framing tests.
func testServer(t *testing.T, cfg Config, mux *Mux) (*Server, string) {
	t.Helper()
	cfg.Mux = mux
	s := NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

func writeReq(t *testing.T, c net.Conn, corr int32, req kmsg.Request) {
	t.Helper()
	b := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, corr)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readResp(t *testing.T, c net.Conn, resp kmsg.Response) int32 {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	corr := int32(binary.BigEndian.Uint32(body))
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return corr
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("connection still open, read %d bytes", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed")
	}
}

func metadataMux(delay func(corr int32) time.Duration) *Mux {
	mux := NewMux()
	mux.Handle(3, 0, 12, func(ctx context.Context, req *Request) Response {
		d := delay(req.CorrelationID)
		return Deferred(func(ctx context.Context) (kmsg.Response, error) {
			time.Sleep(d)
			r := req.Msg.ResponseKind().(*kmsg.MetadataResponse)
			r.Version = req.Version
			r.ClusterID = kmsg.StringPtr("c")
			return r, nil
		})
	})
	return mux
}

func TestPipeliningKeepsOrder(t *testing.T) {
	_, addr := testServer(t, Config{}, metadataMux(func(corr int32) time.Duration {
		return time.Duration(10-corr%10) * time.Millisecond // earlier requests finish later
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := int32(0); i < 30; i++ {
		writeReq(t, c, i, &kmsg.MetadataRequest{Version: int16(i % 13)})
	}
	for i := int32(0); i < 30; i++ {
		resp := &kmsg.MetadataResponse{Version: int16(i % 13)}
		if corr := readResp(t, c, resp); corr != i {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
	}
}

func TestManyConnections(t *testing.T) {
	_, addr := testServer(t, Config{}, metadataMux(func(int32) time.Duration { return time.Millisecond }))
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := int32(0); j < 10; j++ {
				writeReq(t, c, j, &kmsg.MetadataRequest{Version: 9})
				if corr := readResp(t, c, &kmsg.MetadataResponse{Version: 9}); corr != j {
					t.Errorf("corr %d want %d", corr, j)
				}
			}
		}()
	}
	wg.Wait()
}

func TestFrameLimits(t *testing.T) {
	_, addr := testServer(t, Config{MaxRequestSize: 1 << 20}, metadataMux(func(int32) time.Duration { return 0 }))
	for name, size := range map[string]uint32{"too large": 1<<20 + 1, "negative": 0x80000000, "huge": 0x7fffffff, "tiny": 3} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], size)
			c.Write(b[:])
			expectClosed(t, c)
		})
	}
	// The server still serves others.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeReq(t, c, 1, &kmsg.MetadataRequest{Version: 1})
	readResp(t, c, &kmsg.MetadataResponse{Version: 1})
}

func TestApiVersions(t *testing.T) {
	mux := metadataMux(func(int32) time.Duration { return 0 })
	_, addr := testServer(t, Config{}, mux)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for v := int16(0); v <= 4; v++ {
		writeReq(t, c, int32(v), &kmsg.ApiVersionsRequest{Version: v, ClientSoftwareName: "t", ClientSoftwareVersion: "1"})
		resp := &kmsg.ApiVersionsResponse{Version: v}
		readResp(t, c, resp)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != 2 || resp.ApiKeys[0].ApiKey != 3 || resp.ApiKeys[0].MaxVersion != 12 || resp.ApiKeys[1].MaxVersion != 4 {
			t.Fatalf("v%d: %+v", v, resp)
		}
	}
	// v5 is newer than we speak: UNSUPPORTED_VERSION in a v0 response.
	writeReq(t, c, 9, &kmsg.ApiVersionsRequest{Version: 5, ClientSoftwareName: "t", ClientSoftwareVersion: "1"})
	resp := &kmsg.ApiVersionsResponse{Version: 0}
	if corr := readResp(t, c, resp); corr != 9 || resp.ErrorCode != 35 || len(resp.ApiKeys) != 2 {
		t.Fatalf("corr %d resp %+v", corr, resp)
	}
}

func TestUnsupportedClosesConnection(t *testing.T) {
	_, addr := testServer(t, Config{}, metadataMux(func(int32) time.Duration { return 0 }))
	for name, req := range map[string]kmsg.Request{
		"unregistered API": &kmsg.ListGroupsRequest{Version: 1},
		"version too new":  &kmsg.MetadataRequest{Version: 13},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			writeReq(t, c, 1, req)
			expectClosed(t, c)
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0})
		expectClosed(t, c)
	})
}

// TestFileRangesEachPath sends the same two file ranges through each write
// path: sendfile, the streaming copy (sendfile disabled), and the gathered
// copy of a response below SendfileMinBytes.
func TestFileRangesEachPath(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(3)).Read(data)
	path := filepath.Join(dir, "seg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	// Partition 0 gets data[1000:500000], partition 1 data[500000:len-1000].
	ranges := [][2]int{{1000, 500000}, {500000, len(data) - 1000}}
	want := int64(0)
	for _, r := range ranges {
		want += int64(r[1] - r[0])
	}
	want *= 4
	for _, tc := range []struct {
		name             string
		cfg              Config
		sendfile, copied int64
	}{
		{"sendfile", Config{}, want, 0},
		{"streamed copy", Config{DisableSendfile: true}, 0, want},
		{"gathered copy", Config{SendfileMinBytes: 2 << 20}, 0, want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := NewMux()
			mux.Handle(1, 4, 17, func(ctx context.Context, req *Request) Response {
				var ps []FetchPartition
				for i, r := range ranges {
					p := NewFetchPartition(int32(i))
					p.File, p.FileOff, p.FileLen = file, int64(r[0]), int64(r[1]-r[0])
					ps = append(ps, p)
				}
				return &FetchResponse{Version: req.Version, Topics: []FetchTopic{{Topic: "t", Partitions: ps}}}
			})
			s, addr := testServer(t, tc.cfg, mux)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := int32(0); i < 4; i++ {
				writeReq(t, c, i, &kmsg.FetchRequest{Version: 11, Topics: []kmsg.FetchRequestTopic{{Topic: "t"}}})
				resp := &kmsg.FetchResponse{Version: 11}
				readResp(t, c, resp)
				for j, r := range ranges {
					if got := resp.Topics[0].Partitions[j].RecordBatches; !bytes.Equal(got, data[r[0]:r[1]]) {
						t.Fatalf("response %d partition %d: records differ (%d bytes)", i, j, len(got))
					}
				}
			}
			if st := s.Stats(); st.SendfileBytes != tc.sendfile || st.CopiedFileBytes != tc.copied {
				t.Fatalf("stats %+v, want %d bytes by sendfile and %d copied", st, tc.sendfile, tc.copied)
			}
		})
	}
}

// TestGatheredCopyOfTruncatedFile: a file range that is no longer there
// closes the connection rather than sending a short frame.
func TestGatheredCopyOfTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	if err := os.WriteFile(path, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	mux := NewMux()
	mux.Handle(1, 4, 17, func(ctx context.Context, req *Request) Response {
		p := NewFetchPartition(0)
		p.File, p.FileOff, p.FileLen = file, 50, 100 // 50 bytes past the end
		return &FetchResponse{Version: req.Version, Topics: []FetchTopic{{Topic: "t", Partitions: []FetchPartition{p}}}}
	})
	_, addr := testServer(t, Config{SendfileMinBytes: 1 << 10}, mux)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeReq(t, c, 1, &kmsg.FetchRequest{Version: 11, Topics: []kmsg.FetchRequestTopic{{Topic: "t"}}})
	expectClosed(t, c)
}
