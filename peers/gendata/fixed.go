package main

// The hand-picked cases of fixed.jsonl. Their order is part of the contract: gob gives a
// type its id when a process first sends it, and the tests that re-encode these streams
// know which case's types come first (tests/data/README.md lists the ids).

import (
	"math"
	"math/big"
	"strings"
	"time"
)

type Point struct{ X, Y int }

type AllScalars struct {
	B    bool
	I    int
	I8   int8
	I16  int16
	I32  int32
	I64  int64
	U    uint
	U8   uint8
	U16  uint16
	U32  uint32
	U64  uint64
	F32  float32
	F64  float64
	C64  complex64
	C128 complex128
	S    string
	Bs   []byte
}

type Inner struct {
	A int
	B string
}

type Outer struct {
	I   Inner
	P   *Inner
	L   []Inner
	M   map[string]Inner
	Arr [2]Inner
}

type Node struct {
	Value    int
	Children []*Node
}

type Embedded struct {
	Point
	Z int
}

// Shape holds any registered type.
type Shape interface{}

type Circle struct{ R float64 }

type Square struct{ Side int }

type WithIface struct {
	Name  string
	Shape Shape
}

// Opaque is a GobEncoder that sends its bytes as they are.
type Opaque []byte

func (o Opaque) GobEncode() ([]byte, error) { return []byte(o), nil }

func (o *Opaque) GobDecode(b []byte) error {
	*o = append(Opaque(nil), b...)
	return nil
}

type Holder struct {
	Label string
	O     Opaque
	N     *big.Int
}

// Celsius is a BinaryMarshaler: its float64 in hundredths, as a big-endian int32.
type Celsius float64

func (c Celsius) MarshalBinary() ([]byte, error) {
	n := int32(math.Round(float64(c) * 100))
	return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, nil
}

func (c *Celsius) UnmarshalBinary(b []byte) error {
	if len(b) != 4 {
		return errBadCelsius
	}
	*c = Celsius(float64(int32(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))) / 100)
	return nil
}

type celsiusError struct{}

func (celsiusError) Error() string { return "Celsius: want 4 bytes" }

var errBadCelsius = celsiusError{}

// Level is a TextMarshaler, which gob ignores: it goes as an int.
type Level int

var levelNames = []string{"debug", "info", "warn", "error"}

func (l Level) MarshalText() ([]byte, error) { return []byte(levelNames[int(l)%len(levelNames)]), nil }

func (l *Level) UnmarshalText(b []byte) error {
	for i, name := range levelNames {
		if name == string(b) {
			*l = Level(i)
			return nil
		}
	}
	return levelError(string(b))
}

type levelError string

func (e levelError) Error() string { return "Level: unknown " + string(e) }

type Marshalers struct {
	Temp   Celsius
	Lvl    Level
	When   time.Time
	Whens  []time.Time
	Temps  map[string]Celsius
	Opaque *Opaque
}

type Zoo struct {
	Shapes []Shape
	ByName map[string]Shape
	Nested WithIface
}

type Pointers struct {
	P *int
	Q **string
	R *[]int
	S *Point
}

type WithUnexported struct {
	A      int
	hidden int
	C      string
}

type Matrix [2][3]float64

type Tree struct {
	Name  string
	Kids  map[string]*Tree
	Leafs []Leaf
}

type Leaf struct {
	Weight float32
	Tags   []string
}

func init() {
	register("main.Circle", Circle{})
	register("main.Square", &Square{})
	register("main.Point", Point{})
	register("main.Leaf", &Leaf{})
}

func one(name string, v any) *gobCase { return &gobCase{name: name, values: []any{v}} }

func fixedCases() []*gobCase {
	utc := time.Date(2019, 3, 14, 15, 9, 26, 535897932, time.UTC)
	str := "with a pointer"
	strp := &str
	nan := math.Float64frombits(0x7ff8000000000001) // math.NaN()'s bits
	seedStat := StatMessage{NamespacedName{"default", "hello-00001"},
		Stat{utc, "activator-7d9c", 2.5, 0.5, 12, 3}}
	cases := []*gobCase{
		// time.Time first: it takes the first id after the warm-up.
		one("time-utc", utc),
		one("time-zone", time.Date(1969, 7, 20, 20, 17, 40, 0, time.FixedZone("IST", -330*60))),
		// Go 1.19 reads a negative offset's seconds back unsigned: -3662 s returns as -3406 s.
		one("time-offset-seconds", time.Date(2019, 3, 14, 15, 9, 26, 5, time.FixedZone("LMT", -3662))),
		one("time-offset-seconds-east", time.Date(1901, 12, 13, 20, 45, 52, 0, time.FixedZone("LMT", 3662))),
		one("time-offset-east", time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.FixedZone("NPT", 20700))),
		one("time-offset-zero", time.Date(2000, 1, 1, 0, 0, 0, 500000000, time.FixedZone("GMT", 0))),
		one("time-zero", time.Time{}),
		one("time-year-1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)),
		one("time-year-9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", 14*3600))),
		one("bool-true", true),
		one("bool-false", false),
		one("int-0", 0),
		one("int-neg1", -1),
		one("int-127", 127),
		one("int-128", 128),
		one("int-min64", math.MinInt64),
		one("int-max64", math.MaxInt64),
		one("int8-min", int8(math.MinInt8)),
		one("int16-max", int16(math.MaxInt16)),
		one("int32-min", int32(math.MinInt32)),
		one("int64-neg", int64(-1234567890123)),
		one("uint-0", uint(0)),
		one("uint-max64", uint64(math.MaxUint64)),
		one("uint8-255", uint8(255)),
		one("uint16-max", uint16(math.MaxUint16)),
		one("uint32-max", uint32(math.MaxUint32)),
		one("uintptr", uintptr(0xdeadbeef)),
		one("float-0", 0.0),
		one("float-negzero", math.Copysign(0, -1)),
		one("float-17", 17.0),
		one("float-pi", math.Pi),
		one("float-negsmall", -1e-300),
		one("float-max", math.MaxFloat64),
		one("float-denormal", math.SmallestNonzeroFloat64),
		one("float-inf", math.Inf(1)),
		one("float-neginf", math.Inf(-1)),
		one("float-nan", nan),
		one("float32", float32(1.5)),
		one("float32-max", float32(math.MaxFloat32)),
		one("float32-small", float32(math.SmallestNonzeroFloat32)),
		one("float32-tenth", float32(0.1)),
		one("complex", complex(1.5, -2)),
		one("complex64", complex64(complex(0.1, 1e10))),
		one("complex-inf-nan", complex(math.Inf(-1), nan)),
		one("string-empty", ""),
		one("string-utf8", "héllo, 世界"),
		one("string-long", strings.Repeat("0123456789abcdef🙂", 20)),
		one("bytes", []byte{0, 1, 2, 0xff}),
		one("bytes-empty", []byte{}),
		one("bytes-long", []byte(strings.Repeat("\x00\x80\xff", 100))),
		// Composite types, each taking the next ids.
		one("slice-int", []int{1, -2, 300}),
		one("slice-empty", []string{}),
		one("slice-string", []string{"a", "", "ccc"}),
		one("array-int", [3]int{0, 5, 0}),
		one("map-string-int", map[string]int{"a": 1, "b": 0, "c": -3}),
		one("map-int-string", map[int]string{-1: "minus", 7: "seven"}),
		one("map-nested", map[string][]float64{"x": {1, 2}, "y": {}}),
		one("struct-point", Point{3, -4}),
		one("struct-zero", Point{}),
		one("struct-all-scalars", AllScalars{true, -1, -8, -16, -32, -64, 1, 8, 16, 32, 64,
			1.25, -2.5, complex(1, 2), complex(-3, 4), "s", []byte("bs")}),
		one("struct-nested", Outer{Inner{1, "one"}, &Inner{2, "two"}, []Inner{{3, "three"}, {}},
			map[string]Inner{"k": {4, "four"}}, [2]Inner{{5, ""}, {0, "six"}}}),
		one("struct-pointer-top", &Point{7, 8}),
		one("struct-recursive", Node{1, []*Node{{2, nil}, {3, []*Node{{4, nil}}}}}),
		one("struct-embedded", Embedded{Point{1, 2}, 3}),
		one("iface-circle", WithIface{"c", Circle{1.5}}),
		one("iface-square-ptr", WithIface{"s", &Square{4}}),
		one("iface-nil", WithIface{"none", nil}),
		one("iface-int", WithIface{"i", 42}),
		one("gobencoder-opaque", Holder{"h", Opaque{9, 8, 7}, new(big.Int).Lsh(big.NewInt(-1234567), 80)}),
		one("statmessage-seed", seedStat),
		one("statmessage-zero", StatMessage{}),
		{name: "statmessage-two-in-stream", values: []any{seedStat, StatMessage{
			NamespacedName{"default", "hello-00002"}, Stat{time.Time{}, "activator-7d9c", 1, 0, 3, 0}}}},
		{name: "mixed-stream", values: []any{Point{1, 1}, "between", Point{2, 2}, []Point{{3, 3}}}},
		// More of the same kinds, after the ids the tests know.
		one("binarymarshaler", Celsius(-40.25)),
		one("textmarshaler", Level(2)),
		one("struct-marshalers", Marshalers{Celsius(21.5), Level(3), utc,
			[]time.Time{utc, time.Date(1999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -8*3600))},
			map[string]Celsius{"in": 21.5}, &Opaque{1, 2, 3}}),
		one("iface-zoo", Zoo{[]Shape{Circle{2}, &Square{3}, "text", nil, Point{5, 6}, []byte{7}, 1.5},
			map[string]Shape{"leaf": &Leaf{0.5, []string{"x"}}},
			WithIface{"inner", Point{-1, -2}}}),
		one("struct-pointers", Pointers{new(int), &strp, &[]int{1, 2}, &Point{0, 9}}),
		one("struct-unexported", WithUnexported{1, 2, "c"}),
		one("array-of-arrays", Matrix{{1, 2, 3}, {math.Inf(1), -0.5, 0}}),
		one("array-bytes", [4]byte{0, 1, 0x7f, 0xff}),
		one("slice-of-slices", [][]int{{1}, {}, {2, 3}}),
		one("slice-bool", []bool{true, false, true}),
		one("slice-float32", []float32{1.5, float32(math.Inf(-1)), 0}),
		one("slice-complex", []complex128{complex(1, -1), 0}),
		one("slice-bytes", [][]byte{[]byte("ab"), {}, {0}}),
		one("map-empty", map[string]int{}),
		one("map-bool-float", map[bool]float64{true: 1.5, false: -1}),
		one("map-uint-slice", map[uint16][]string{7: {"seven", "sieben"}}),
		one("map-struct-key", map[Point]string{{1, 2}: "one-two"}),
		one("map-of-maps", map[string]map[int8]bool{"a": {1: true}, "b": {-1: false, 2: true}}),
		one("struct-tree", Tree{"root", map[string]*Tree{"kid": {"kid", nil, []Leaf{{1.5, nil}}}},
			[]Leaf{{0.25, []string{"a", "b"}}, {}}}),
		{name: "ints-in-stream", values: []any{1, 2, int8(3), "four", 5.0}},
		{name: "points-in-stream", values: []any{Point{1, 2}, &Point{3, 4}, Point{}, []Point{}, map[string]Point{"p": {5, 6}}}},
	}
	return cases
}
