package main

// Gob test vectors: each case's values are encoded by Go, decoded back by Go (what Go
// decoded is what the line records), then corrupted; each corruption Go refuses is kept
// with Go's error and whether it is structural.

import (
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand"
	"reflect"
	"strings"
)

type gobCase struct {
	name   string
	values []any // encoded in this order by one Encoder
	stream []byte
}

type vectorLine struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Gob        string `json:"gob"`
	Values     []any  `json:"values,omitempty"`
	Error      string `json:"error,omitempty"`
	Structural *bool  `json:"structural,omitempty"`
}

type dataFile struct {
	name string
	data []byte
}

// gobVectorFiles makes every file of gob-vectors/. All streams are encoded before any is
// decoded, so the type ids of the fixed cases depend on nothing but the fixed cases.
func gobVectorFiles() ([]dataFile, error) {
	warmUp()
	sets := []struct {
		file        string
		cases       []*gobCase
		corruptions int
	}{
		{"fixed.jsonl", fixedCases(), 10},
		{"random-1.jsonl", randomCases("random-1", 1, 170), 2},
		{"random-2.jsonl", randomCases("random-2", 2, 170), 2},
	}
	for _, set := range sets {
		for _, c := range set.cases {
			c.stream = encodeStable(c.values)
		}
	}
	var files []dataFile
	for _, set := range sets {
		var buf bytes.Buffer
		for _, c := range set.cases {
			if err := writeCase(&buf, c, set.corruptions); err != nil {
				return nil, err
			}
		}
		files = append(files, dataFile{set.file, buf.Bytes()})
	}
	return files, nil
}

// warmUp encodes types that no case uses, as a long-running sender has before it sends
// the values we record: the cases' type ids then start well above 65.
func warmUp() {
	for n := 1; n <= warmUpTypes; n++ {
		v := reflect.New(reflect.ArrayOf(n, reflect.TypeOf(int8(0)))).Elem()
		encodeOnce([]any{v.Interface()})
	}
}

// warmUpTypes is how many ids are taken before the fixed cases: their first id is 65+40.
const warmUpTypes = 40

func encodeOnce(values []any) []byte {
	var b bytes.Buffer
	enc := gob.NewEncoder(&b)
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			panic(fmt.Sprintf("encoding %T: %v", v, err))
		}
	}
	return b.Bytes()
}

// encodeStable is the stream of values that does not depend on Go's random map order:
// gob writes a map's entries in iteration order, so the values are encoded again and
// again and the lexicographically smallest stream is kept. The search stops once it has
// seen as many distinct streams as there are orderings of the maps' entries (then every
// possible stream has been seen), else after maxTrials encodings. Cases keep the product
// of the map orderings small (random cases: at most 3 maps of 2 entries) so that every
// ordering turns up long before maxTrials.
func encodeStable(values []any) []byte {
	best := encodeOnce(values)
	orders := 1
	for _, v := range values {
		orders *= orderings(reflect.ValueOf(v))
	}
	seen := map[string]bool{string(best): true}
	for trial := 0; trial < maxTrials && len(seen) < orders; trial++ {
		s := encodeOnce(values)
		seen[string(s)] = true
		if bytes.Compare(s, best) < 0 {
			best = s
		}
	}
	return best
}

const maxTrials = 3000

// orderings is the number of orders the maps within v can be written in.
func orderings(v reflect.Value) int {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 1
		}
		return orderings(v.Elem())
	case reflect.Slice, reflect.Array:
		n := 1
		for i := 0; i < v.Len(); i++ {
			n *= orderings(v.Index(i))
		}
		return n
	case reflect.Struct:
		n := 1
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				n *= orderings(v.Field(i))
			}
		}
		return n
	case reflect.Map:
		n := 1
		for i := 2; i <= v.Len(); i++ {
			n *= i
		}
		for it := v.MapRange(); it.Next(); {
			n *= orderings(it.Key()) * orderings(it.Value())
		}
		return n
	}
	return 1
}

var errTrailing = errors.New("bytes after the last value")

// errEnded is Go's io.EOF where the stream ended cleanly between values: fewer values
// than were sent, not a malformed stream. (Go also says EOF when a value's bytes end
// before its message does.)
type errEnded struct{}

func (errEnded) Error() string { return io.EOF.Error() }

// decodeAll decodes a stream as values of the given types with a fresh Decoder: their
// canonical forms, or Go's error.
func decodeAll(stream []byte, types []reflect.Type) (values []any, err error) {
	defer func() {
		if p := recover(); p != nil {
			values, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	r := bytes.NewReader(stream)
	dec := gob.NewDecoder(r)
	for _, t := range types {
		p := reflect.New(t)
		ended := r.Len() == 0
		if err := dec.Decode(p.Interface()); err != nil {
			if err == io.EOF && ended {
				return nil, errEnded{}
			}
			return nil, err
		}
		values = append(values, canonical(p.Elem()))
	}
	if r.Len() > 0 {
		return values, errTrailing
	}
	return values, nil
}

func writeCase(buf *bytes.Buffer, c *gobCase, corruptions int) error {
	var types []reflect.Type
	for _, v := range c.values {
		types = append(types, reflect.TypeOf(v))
	}
	values, err := decodeAll(c.stream, types)
	if err != nil {
		return fmt.Errorf("%s: Go cannot decode its own stream: %v", c.name, err)
	}
	if err := jsonLine(buf, vectorLine{Name: c.name, Kind: "valid", Gob: hex.EncodeToString(c.stream), Values: values}); err != nil {
		return err
	}
	h := fnv.New64a()
	h.Write([]byte(c.name))
	rng := rand.New(rand.NewSource(int64(h.Sum64())))
	seen := map[string]bool{string(c.stream): true}
	for n := 0; n < corruptions; n++ {
		bad := corrupt(rng, c.stream)
		if seen[string(bad)] {
			continue
		}
		seen[string(bad)] = true
		_, err := decodeAll(bad, types)
		if err == nil || err == errTrailing || strings.HasPrefix(err.Error(), "panic: ") {
			continue // Go took it (or broke on it): not a vector
		}
		structural := isStructural(err, bad)
		line := vectorLine{Name: fmt.Sprintf("%s/corrupt-%d", c.name, n), Kind: "invalid",
			Gob: hex.EncodeToString(bad), Error: err.Error(), Structural: &structural}
		if err := jsonLine(buf, line); err != nil {
			return err
		}
	}
	return nil
}

// corrupt is a copy of stream with one random fault.
func corrupt(rng *rand.Rand, stream []byte) []byte {
	b := append([]byte(nil), stream...)
	msgs, _ := splitMessages(b)
	at := rng.Intn(len(b))
	switch rng.Intn(8) {
	case 0: // flip a bit
		b[at] ^= 1 << rng.Intn(8)
	case 1: // a byte that means something to gob: zero, small, a length prefix, -1
		b[at] = []byte{0x00, 0x01, 0x7f, 0x80, 0xf8, 0xfe, 0xff}[rng.Intn(7)]
	case 2: // insert bytes
		extra := make([]byte, 1+rng.Intn(4))
		rng.Read(extra)
		b = append(b[:at], append(extra, b[at:]...)...)
	case 3: // delete bytes
		end := at + 1 + rng.Intn(4)
		if end > len(b) {
			end = len(b)
		}
		b = append(b[:at], b[end:]...)
	case 4: // cut short, inside or between messages
		b = b[:1+rng.Intn(len(b))]
		if len(b) == len(stream) {
			b = b[:len(b)-1]
		}
	case 5: // end after a type definition, before the value that needs it
		var defs []message
		for _, m := range msgs[:len(msgs)-1] {
			if m.id < 0 {
				defs = append(defs, m)
			}
		}
		if len(defs) > 0 {
			b = b[:defs[rng.Intn(len(defs))].end]
		} else {
			b = b[:len(b)/2]
		}
	case 6: // one message twice (a type defined twice, or a value too many)
		m := msgs[rng.Intn(len(msgs))]
		b = append(b[:m.end], append(append([]byte(nil), stream[m.start:m.end]...), stream[m.end:]...)...)
	case 7: // a message's length one more or one less
		m := msgs[rng.Intn(len(msgs))]
		if b[m.start] < 0x7f && b[m.start] > 0x01 {
			b[m.start] += byte(2*rng.Intn(2)) - 1
		} else {
			b[m.start] ^= 1
		}
	}
	return b
}

type message struct {
	start, end int   // the message, its byte count first
	id         int64 // a type definition's id is negative
}

// splitMessages cuts a stream into gob messages (count, type id, rest); whole is false
// when the stream does not end exactly at the end of a message.
func splitMessages(b []byte) (msgs []message, whole bool) {
	pos := 0
	for pos < len(b) {
		count, n, ok := readUint(b[pos:])
		if !ok || count == 0 || count > uint64(len(b)-pos-n) {
			return msgs, false
		}
		body := b[pos+n : pos+n+int(count)]
		u, _, ok := readUint(body)
		if !ok {
			return msgs, false
		}
		id := int64(u >> 1)
		if u&1 != 0 {
			id = ^id
		}
		msgs = append(msgs, message{pos, pos + n + int(count), id})
		pos += n + int(count)
	}
	return msgs, true
}

// readUint reads one gob unsigned integer: a byte below 0x80, or the negated byte count
// of a big-endian number that follows.
func readUint(b []byte) (value uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1, true
	}
	size := int(-int8(b[0]))
	if size > 8 || len(b) < 1+size {
		return 0, 0, false
	}
	for _, c := range b[1 : 1+size] {
		value = value<<8 | uint64(c)
	}
	return value, 1 + size, true
}

// Go's errors that say the stream is malformed as gob, whatever Go type it is decoded
// into: counts, lengths, field numbers and type ids that the bytes contradict.
var structuralErrors = []string{
	"extra data in buffer",
	"encoded unsigned integer out of range",
	"field numbers out of bounds",
	"corrupted data",
	"exceeds input size",
	"slice length",
	"slice too big",
	"duplicate type",
	"unknown type id",
	"invalid message length",
	"length mismatch in decodeArray",
	"length too large for buffer",
}

// isStructural tells a stream no decoder may accept from one that Go refused only for
// its Go types (a mismatch, a value out of an int kind's range, an unregistered
// interface name, a marshaler refusing its bytes). Unknown errors count as not
// structural. A stream of whole messages that ends with type definitions is not
// structural either: a decoder that returns every value of a stream may return those
// before it, or none (Go's "unexpected EOF" after type definitions), nor is a stream
// that ends cleanly between values (Go's "EOF" there).
func isStructural(err error, stream []byte) bool {
	text := err.Error()
	if _, ok := err.(errEnded); ok {
		return false
	}
	if err == io.EOF { // inside a message: a value needs more bytes than its message has
		return true
	}
	if err == io.ErrUnexpectedEOF || text == io.ErrUnexpectedEOF.Error() {
		msgs, whole := splitMessages(stream)
		return !(whole && len(msgs) > 0 && msgs[len(msgs)-1].id < 0)
	}
	for _, s := range structuralErrors {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}
