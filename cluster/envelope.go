//go:build !nocluster

// This file is the one message type members exchange: an envelope of a
// kind and a JSON body. protoactor-go's remote carries protobuf messages
// only; the envelope's descriptor is built here at start-up (dynamicpb),
// so no generated code is needed and every request and answer stays a Go
// struct with its JSON tags.

package cluster

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// envelopeName is the envelope's protobuf full name, which remote sends as
// the message's type name.
const envelopeName = "shipote.cluster.v1.Envelope"

// Envelope kinds.
const (
	kindInfo     = "info"      // request: NodeInfo of the member
	kindInfoResp = "info-resp" // answer: NodeInfo
	kindHTTP     = "http"      // request: an API request to serve
	kindHTTPResp = "http-resp" // answer: Response
	kindError    = "error"     // answer: errorBody
)

var (
	envelopeType          protoreflect.MessageType
	envKind, envBody      protoreflect.FieldDescriptor
	envData               protoreflect.FieldDescriptor
	envelopeRegisterError error
)

func init() {
	envelopeRegisterError = registerEnvelope()
}

// registerEnvelope builds the envelope's descriptor and registers its
// type, so that remote can decode it by name.
func registerEnvelope() error {
	optional := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("shipote/cluster/v1/envelope.proto"),
		Package: proto.String("shipote.cluster.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Envelope"),
			Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("kind"), JsonName: proto.String("kind"), Number: proto.Int32(1), Label: optional,
					Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
				{Name: proto.String("body"), JsonName: proto.String("body"), Number: proto.Int32(2), Label: optional,
					Type: descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()},
				{Name: proto.String("data"), JsonName: proto.String("data"), Number: proto.Int32(3), Label: optional,
					Type: descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()},
			},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		return fmt.Errorf("cluster: envelope descriptor: %w", err)
	}
	if err := protoregistry.GlobalFiles.RegisterFile(fd); err != nil {
		return fmt.Errorf("cluster: register envelope file: %w", err)
	}
	md := fd.Messages().ByName("Envelope")
	envelopeType = dynamicpb.NewMessageType(md)
	envKind, envBody, envData = md.Fields().ByName("kind"), md.Fields().ByName("body"), md.Fields().ByName("data")
	if err := protoregistry.GlobalTypes.RegisterMessage(envelopeType); err != nil {
		return fmt.Errorf("cluster: register envelope type: %w", err)
	}
	return nil
}

// wrap returns the envelope of kind holding v as JSON.
func wrap(kind string, v any) (proto.Message, error) { return wrapData(kind, v, nil) }

// wrapData is wrap with bytes beside the JSON (an HTTP body, a chunk),
// which travel as they are rather than base64 inside it.
func wrapData(kind string, v any, data []byte) (proto.Message, error) {
	if envelopeRegisterError != nil {
		return nil, envelopeRegisterError
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode %s: %w", kind, err)
	}
	m := envelopeType.New()
	m.Set(envKind, protoreflect.ValueOfString(kind))
	m.Set(envBody, protoreflect.ValueOfBytes(body))
	if len(data) > 0 {
		m.Set(envData, protoreflect.ValueOfBytes(data))
	}
	return m.Interface(), nil
}

// dataOf returns the bytes an envelope carries beside its JSON.
func dataOf(msg any) []byte {
	pm, ok := msg.(proto.Message)
	if !ok || envelopeType == nil {
		return nil
	}
	r := pm.ProtoReflect()
	if r.Descriptor().FullName() != envelopeName {
		return nil
	}
	return r.Get(envData).Bytes()
}

// unwrap returns the kind and body of an envelope; ok is false for any
// other message.
func unwrap(msg any) (kind string, body []byte, ok bool) {
	pm, isProto := msg.(proto.Message)
	if !isProto || envelopeType == nil {
		return "", nil, false
	}
	r := pm.ProtoReflect()
	if r.Descriptor().FullName() != envelopeName {
		return "", nil, false
	}
	return r.Get(envKind).String(), r.Get(envBody).Bytes(), true
}

// errorBody is the body of an error answer.
type errorBody struct {
	Message string `json:"message"`
}

// jsonEscape returns s as the inside of a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
