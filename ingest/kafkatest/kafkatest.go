package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Partitions is the number of partitions Cluster gives each seeded topic.
// More than one, so that tests exercise per-partition positions.
const Partitions = 3

// Cluster starts a single-broker kfake cluster on a random 127.0.0.1 port,
// seeds topics with Partitions partitions each, and closes the cluster when
// the test ends. Topics are not auto-created: producing to an unknown topic
// fails, as it does on a production cluster with auto-creation off. Extra
// kfake options (faults, limits, SASL) go through ClusterWith.
func Cluster(t testing.TB, topics ...string) (addr string, c *kfake.Cluster) {
	t.Helper()
	var opts []kfake.Opt
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(Partitions, topics...))
	}
	return ClusterWith(t, opts...)
}

// ClusterWith is Cluster with explicit kfake options; it always runs one
// broker on a random loopback port.
func ClusterWith(t testing.TB, opts ...kfake.Opt) (addr string, c *kfake.Cluster) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(Partitions)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kafkatest: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		t.Fatal("kafkatest: kfake listens nowhere")
	}
	return addrs[0], c
}

// Client returns a plain franz-go client for addr, closed when the test ends.
func Client(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Produce writes values to topic, spread round-robin over its partitions,
// with no key, and fails the test if any write fails.
func Produce(t testing.TB, addr, topic string, values ...[]byte) {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Value: v}
	}
	produce(t, addr, kgo.RoundRobinPartitioner(), recs)
}

// ProduceRecords writes records as given: a record with a key goes to the
// partition of its key's hash, as with any Kafka client's default.
func ProduceRecords(t testing.TB, addr string, recs ...*kgo.Record) {
	t.Helper()
	produce(t, addr, kgo.StickyKeyPartitioner(nil), recs)
}

func produce(t testing.TB, addr string, p kgo.Partitioner, recs []*kgo.Record) {
	t.Helper()
	cl := Client(t, addr, kgo.RecordPartitioner(p))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("kafkatest: produce: %v", err)
	}
}

// Consume reads topic from its start with a direct (group-less) consumer
// until it has n records, and fails the test if they do not come within
// timeout. It returns exactly the first n records it got, in fetch order
// (ordered within each partition). opts are extra client options, such as
// the SASL or TLS a cluster requires.
func Consume(t testing.TB, addr, topic string, n int, timeout time.Duration, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := Client(t, addr, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A fetch with nothing to return is held this long at most, so a
		// read that ends at the log's end returns promptly.
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)...)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollRecords(ctx, n-len(out))
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: consume %s: got %d records within %v, want %d", topic, len(out), timeout, n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("kafkatest: consume %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out[:n]
}

// EndOffsets returns the high watermark of every partition of topics.
func EndOffsets(t testing.TB, addr string, topics ...string) map[string]map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(Client(t, addr))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	offs, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("kafkatest: list end offsets: %v", err)
	}
	out := make(map[string]map[int32]int64)
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("kafkatest: end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out
}

// Header returns the value of the first header named key, and whether there
// was one.
func Header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
