package ingest

import (
	"strings"

	"github.com/spinecdp/spine/ingest/ciam"
	"github.com/spinecdp/spine/ingest/iot"
	"github.com/spinecdp/spine/ingest/msg"
	"github.com/spinecdp/spine/ingest/normalize"
	"github.com/spinecdp/spine/ingest/pos"
	"github.com/spinecdp/spine/ingest/segment"
	"github.com/spinecdp/spine/ingest/support"
	"github.com/spinecdp/spine/schemas/canon"
)

// DefaultTopicPrefix is the prefix of the channel topics: spine.web,
// spine.mobile, spine.iot, spine.pos, spine.support, spine.ciam.
const DefaultTopicPrefix = "spine"

// Decoders returns the decoder of every channel, each normalizing
// identifiers with n and reading messages within lim. The decoders are pure
// and safe for concurrent use; the map is the caller's.
func Decoders(n *normalize.Normalizer, lim msg.Limits) map[canon.Channel]Decoder {
	return map[canon.Channel]Decoder{
		canon.Web:     segment.New(canon.Web, n, lim),
		canon.Mobile:  segment.New(canon.Mobile, n, lim),
		canon.IoT:     iot.New(n, lim),
		canon.POS:     pos.New(n, lim),
		canon.Support: support.New(n, lim),
		canon.CIAM:    ciam.New(n, lim),
	}
}

// Topic returns the topic of channel ch under prefix: "spine" and web give
// "spine.web". An empty prefix gives the bare channel name.
func Topic(prefix string, ch canon.Channel) string {
	prefix = strings.TrimSuffix(prefix, ".")
	if prefix == "" {
		return string(ch)
	}
	return prefix + "." + string(ch)
}

// Topics returns the topic of every channel under prefix, mapped to its
// channel.
func Topics(prefix string) map[string]canon.Channel {
	m := make(map[string]canon.Channel, len(canon.Channels))
	for _, ch := range canon.Channels {
		m[Topic(prefix, ch)] = ch
	}
	return m
}

// ChannelOf returns the channel whose topic under prefix is topic. A topic
// of no channel is refused with unknown_topic.
func ChannelOf(prefix, topic string) (canon.Channel, error) {
	for _, ch := range canon.Channels {
		if Topic(prefix, ch) == topic {
			return ch, nil
		}
	}
	return "", &msg.Reject{Reason: msg.ReasonUnknownTopic, Field: "topic", Message: "topic is not a channel topic under the configured prefix"}
}
