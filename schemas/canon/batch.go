package canon

// Partition names one partition of one topic.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Batch is a group of decoded events and the consume positions they bring
// the engine to. The engine applies the events and stores the positions in
// one transaction, so a restart resumes exactly after the last applied batch.
type Batch struct {
	Events []Event
	// Positions maps each partition the batch read from to the next offset to
	// consume. It covers rejected records too, which never reach the engine.
	Positions map[Partition]int64
}
