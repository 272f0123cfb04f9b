package server

import (
	"encoding/json"
	"reflect"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/microbot/microbot/framework/registry"
)

// maxSchemaDepth bounds how deep nested messages are described, so
// recursive types end.
const maxSchemaDepth = 5

var (
	protoMessageType = reflect.TypeFor[proto.Message]()
	rawMessageType   = reflect.TypeFor[json.RawMessage]()
)

// schemaOf describes the type a handler takes or returns (t is the pointer
// type of the handler's argument): field names as they appear in JSON, types
// as Go or protobuf scalar names, nested messages recursed.
func schemaOf(t reflect.Type) *registry.Value {
	if t.Implements(protoMessageType) {
		md := reflect.Zero(t).Interface().(proto.Message).ProtoReflect().Descriptor()
		return protoMessageValue(md, string(md.Name()), 0)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return goValue(t, t.Name(), 0)
}

func protoMessageValue(md protoreflect.MessageDescriptor, name string, depth int) *registry.Value {
	v := &registry.Value{Name: name, Type: string(md.Name())}
	if depth >= maxSchemaDepth {
		return v
	}
	fields := md.Fields()
	for i := range fields.Len() {
		v.Values = append(v.Values, protoFieldValue(fields.Get(i), depth+1))
	}
	return v
}

func protoFieldValue(fd protoreflect.FieldDescriptor, depth int) *registry.Value {
	elem := fd
	var typ string
	switch {
	case fd.IsMap():
		elem = fd.MapValue()
		typ = "map[" + protoKindName(fd.MapKey()) + "]" + protoKindName(elem)
	case fd.IsList():
		typ = "[]" + protoKindName(fd)
	default:
		typ = protoKindName(fd)
	}
	if m := elem.Message(); m != nil {
		v := protoMessageValue(m, fd.JSONName(), depth)
		v.Type = typ
		return v
	}
	return &registry.Value{Name: fd.JSONName(), Type: typ}
}

func protoKindName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return string(fd.Message().Name())
	case protoreflect.EnumKind:
		return string(fd.Enum().Name())
	}
	return fd.Kind().String()
}

func goValue(t reflect.Type, name string, depth int) *registry.Value {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(protoMessageType) {
		md := reflect.New(t).Interface().(proto.Message).ProtoReflect().Descriptor()
		return protoMessageValue(md, name, depth)
	}
	v := &registry.Value{Name: name, Type: goTypeName(t)}
	if depth >= maxSchemaDepth {
		return v
	}
	switch t.Kind() {
	case reflect.Struct:
		v.Values = structFields(t, depth+1)
	case reflect.Slice, reflect.Array, reflect.Map:
		if t == rawMessageType {
			break
		}
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Struct {
			v.Values = goValue(e, name, depth).Values
		}
	}
	return v
}

// structFields lists the fields encoding/json would write, flattening
// embedded structs as it does.
func structFields(t reflect.Type, depth int) []*registry.Value {
	var out []*registry.Value
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			out = append(out, structFields(ft, depth)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, goValue(f.Type, name, depth))
	}
	return out
}

// goTypeName names t as a person reading JSON wants it: kinds for scalars
// ("string", "int64"), the type's name for structs, "[]T" and "map[K]V".
func goTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == rawMessageType:
		return "json"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "bytes"
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.Name() == "" {
			return "object"
		}
		return t.Name()
	case reflect.Slice, reflect.Array:
		return "[]" + goTypeName(t.Elem())
	case reflect.Map:
		return "map[" + goTypeName(t.Key()) + "]" + goTypeName(t.Elem())
	case reflect.Interface:
		return "any"
	}
	return t.Kind().String()
}
