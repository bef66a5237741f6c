package main

// The canonical JSON form of a decoded Go value (tests/data/README.md).

import (
	"encoding"
	"encoding/base64"
	"encoding/gob"
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"time"
)

var (
	timeType      = reflect.TypeOf(time.Time{})
	gobEncoder    = reflect.TypeOf((*gob.GobEncoder)(nil)).Elem()
	binaryMarshal = reflect.TypeOf((*encoding.BinaryMarshaler)(nil)).Elem()
)

// interfaceNames maps the concrete types registered for interface values to their names.
var interfaceNames = map[reflect.Type]string{}

func register(name string, value any) {
	gob.RegisterName(name, value)
	interfaceNames[reflect.TypeOf(value)] = name
}

// isMarshaler is whether gob sends t's values as the bytes of their own method: GobEncode,
// else MarshalBinary. (gob never uses MarshalText: a TextMarshaler goes by its kind.)
func isMarshaler(t reflect.Type) bool {
	return t.Implements(gobEncoder) || t.Implements(binaryMarshal)
}

// marshaled is the bytes a GobEncoder or BinaryMarshaler sends.
func marshaled(v reflect.Value) []byte {
	var b []byte
	var err error
	switch m := v.Interface().(type) {
	case gob.GobEncoder:
		b, err = m.GobEncode()
	case encoding.BinaryMarshaler:
		b, err = m.MarshalBinary()
	default:
		panic("not a marshaler: " + v.Type().String())
	}
	if err != nil {
		panic(err)
	}
	return b
}

func floatJSON(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case f == 0 && math.Signbit(f):
		return json.RawMessage("-0.0") // not Go's "-0", which JSON readers take for the int 0
	}
	return f
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func canonical(v reflect.Value) any {
	t := v.Type()
	if t == timeType {
		return map[string]any{"time": v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)}
	}
	if t.Kind() == reflect.Pointer && t.Elem() != timeType && isMarshaler(t) {
		if v.IsNil() {
			return map[string]any{"opaque": ""}
		}
		return map[string]any{"opaque": b64(marshaled(v))}
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		if isMarshaler(t) {
			return map[string]any{"opaque": b64(marshaled(v))}
		}
		if isMarshaler(reflect.PtrTo(t)) {
			p := reflect.New(t)
			p.Elem().Set(v)
			return map[string]any{"opaque": b64(marshaled(p))}
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return floatJSON(v.Float())
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		return []any{floatJSON(real(c)), floatJSON(imag(c))}
	case reflect.String:
		return v.String()
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"bytes": b64(v.Bytes())}
		}
		fallthrough
	case reflect.Array:
		list := []any{}
		for i := 0; i < v.Len(); i++ {
			list = append(list, canonical(v.Index(i)))
		}
		return list
	case reflect.Map:
		// Go decodes a map in no fixed order: the pairs are sorted by their JSON text.
		type pair struct {
			key  string
			pair []any
		}
		var pairs []pair
		for it := v.MapRange(); it.Next(); {
			p := []any{canonical(it.Key()), canonical(it.Value())}
			text, err := json.Marshal(p)
			if err != nil {
				panic(err)
			}
			pairs = append(pairs, pair{string(text), p})
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].key < pairs[j].key })
		list := []any{}
		for _, p := range pairs {
			list = append(list, p.pair)
		}
		return list
	case reflect.Struct:
		obj := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				obj[t.Field(i).Name] = canonical(v.Field(i))
			}
		}
		return obj
	case reflect.Pointer:
		if v.IsNil() { // an absent field: the zero value of what it points to
			return canonical(reflect.Zero(t.Elem()))
		}
		return canonical(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		inner := v.Elem()
		name, ok := interfaceNames[inner.Type()]
		if !ok {
			name = inner.Type().String() // gob's own names of the basic types: "int", ...
		}
		return map[string]any{"type": name, "value": canonical(inner)}
	}
	panic("no canonical form for " + t.String())
}
