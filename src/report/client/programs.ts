import { EdgeProgram, NodeProgram } from 'sigma/rendering';
import type { ProgramInfo } from 'sigma/rendering';
import type { EdgeDisplayData, NodeDisplayData, RenderParams } from 'sigma/types';
import { floatColor } from 'sigma/utils';
import { PORT_DASH } from '../palette.js';

/**
 * WebGL programs for sigma. Edges: a straight anti-aliased band like sigma's rectangle
 * program, plus two things circuits need — a dash pattern per head input (q solid, k dashed,
 * v dotted, measured in screen pixels) and a port offset, so the q, k and v edges between
 * the same two nodes end at three points of the target instead of one. Nodes: a disc with a
 * white ring that separates it from the edges beneath.
 */

export interface EdgeExtras {
  /** 0 solid, 1 dashed, 2 dotted. */
  dash?: number;
  /** Target end offset, in node radii along y: −1, 0, 1. */
  port?: number;
}

const { UNSIGNED_BYTE, FLOAT } = WebGLRenderingContext;

function glsl(n: number): string {
  return Number.isInteger(n) ? `${n}.0` : String(n);
}

const K = PORT_DASH.k ?? [7, 4];
const V = PORT_DASH.v ?? [2, 3];

const EDGE_VERTEX = /* glsl */ `
attribute vec4 a_id;
attribute vec4 a_color;
attribute vec2 a_normal;
attribute float a_normalCoef;
attribute vec2 a_positionStart;
attribute vec2 a_positionEnd;
attribute float a_positionCoef;
attribute float a_dash;
attribute float a_port;
attribute float a_radius;

uniform mat3 u_matrix;
uniform float u_sizeRatio;
uniform float u_zoomRatio;
uniform float u_pixelRatio;
uniform float u_correctionRatio;
uniform float u_minEdgeThickness;
uniform float u_feather;
uniform vec2 u_resolution;

varying vec4 v_color;
varying vec2 v_normal;
varying float v_thickness;
varying float v_feather;
varying float v_along;
varying float v_dash;

const float bias = 255.0 / 254.0;

void main() {
  vec2 normal = a_normal * a_normalCoef;
  float nodeRadius = a_radius * 2.0 * u_correctionRatio / u_sizeRatio;
  vec2 end = a_positionEnd + vec2(0.0, a_port * nodeRadius * 0.6);
  vec2 position = mix(a_positionStart, end, a_positionCoef);

  float normalLength = length(normal);
  vec2 unitNormal = normal / normalLength;
  float pixelsThickness = max(normalLength, u_minEdgeThickness * u_sizeRatio);
  float webGLThickness = pixelsThickness * u_correctionRatio / u_sizeRatio;

  gl_Position = vec4((u_matrix * vec3(position + unitNormal * webGLThickness, 1)).xy, 0, 1);

  v_thickness = webGLThickness / u_zoomRatio;
  v_normal = unitNormal;
  v_feather = u_feather * u_correctionRatio / u_zoomRatio / u_pixelRatio * 2.0;

  vec2 s = (u_matrix * vec3(a_positionStart, 1)).xy;
  vec2 e = (u_matrix * vec3(end, 1)).xy;
  v_along = a_positionCoef * length((e - s) * u_resolution * 0.5);
  v_dash = a_dash;

  #ifdef PICKING_MODE
  v_color = a_id;
  #else
  v_color = a_color;
  #endif
  v_color.a *= bias;
}
`;

const EDGE_FRAGMENT = /* glsl */ `
precision highp float;

varying vec4 v_color;
varying vec2 v_normal;
varying float v_thickness;
varying float v_feather;
varying float v_along;
varying float v_dash;

const vec4 transparent = vec4(0.0, 0.0, 0.0, 0.0);

void main(void) {
  #ifdef PICKING_MODE
  gl_FragColor = v_color;
  #else
  float dist = length(v_normal) * v_thickness;
  float t = smoothstep(v_thickness - v_feather, v_thickness, dist);
  float on = 1.0;
  if (v_dash > 0.5 && v_dash < 1.5) {
    on = step(mod(v_along, ${glsl(K[0] + K[1])}), ${glsl(K[0])});
  } else if (v_dash > 1.5) {
    on = step(mod(v_along, ${glsl(V[0] + V[1])}), ${glsl(V[0])});
  }
  gl_FragColor = mix(v_color, transparent, t) * on;
  #endif
}
`;

const EDGE_UNIFORMS = ['u_matrix', 'u_zoomRatio', 'u_sizeRatio', 'u_correctionRatio', 'u_pixelRatio', 'u_feather', 'u_minEdgeThickness', 'u_resolution'] as const;

export class CircuitEdgeProgram extends EdgeProgram<(typeof EDGE_UNIFORMS)[number]> {
  getDefinition() {
    return {
      VERTICES: 6,
      VERTEX_SHADER_SOURCE: EDGE_VERTEX,
      FRAGMENT_SHADER_SOURCE: EDGE_FRAGMENT,
      METHOD: WebGLRenderingContext.TRIANGLES,
      UNIFORMS: EDGE_UNIFORMS,
      ATTRIBUTES: [
        { name: 'a_positionStart', size: 2, type: FLOAT },
        { name: 'a_positionEnd', size: 2, type: FLOAT },
        { name: 'a_normal', size: 2, type: FLOAT },
        { name: 'a_color', size: 4, type: UNSIGNED_BYTE, normalized: true },
        { name: 'a_id', size: 4, type: UNSIGNED_BYTE, normalized: true },
        { name: 'a_dash', size: 1, type: FLOAT },
        { name: 'a_port', size: 1, type: FLOAT },
        { name: 'a_radius', size: 1, type: FLOAT },
      ],
      CONSTANT_ATTRIBUTES: [
        { name: 'a_positionCoef', size: 1, type: FLOAT },
        { name: 'a_normalCoef', size: 1, type: FLOAT },
      ],
      CONSTANT_DATA: [
        [0, 1],
        [0, -1],
        [1, 1],
        [1, 1],
        [0, -1],
        [1, -1],
      ],
    };
  }

  processVisibleItem(edgeIndex: number, startIndex: number, sourceData: NodeDisplayData, targetData: NodeDisplayData, data: EdgeDisplayData): void {
    const extras = data as EdgeDisplayData & EdgeExtras;
    const thickness = data.size || 1;
    const { x: x1, y: y1 } = sourceData;
    const { x: x2, y: y2 } = targetData;
    const dx = x2 - x1;
    const dy = y2 - y1;
    let len = dx * dx + dy * dy;
    let n1 = 0;
    let n2 = 0;
    if (len) {
      len = 1 / Math.sqrt(len);
      n1 = -dy * len * thickness;
      n2 = dx * len * thickness;
    }
    const a = this.array;
    let i = startIndex;
    a[i++] = x1;
    a[i++] = y1;
    a[i++] = x2;
    a[i++] = y2;
    a[i++] = n1;
    a[i++] = n2;
    a[i++] = floatColor(data.color);
    a[i++] = edgeIndex;
    a[i++] = extras.dash ?? 0;
    a[i++] = extras.port ?? 0;
    a[i++] = targetData.size || 1;
  }

  setUniforms(params: RenderParams, { gl, uniformLocations }: ProgramInfo<(typeof EDGE_UNIFORMS)[number]>): void {
    const u = uniformLocations;
    gl.uniformMatrix3fv(u.u_matrix, false, params.matrix);
    gl.uniform1f(u.u_zoomRatio, params.zoomRatio);
    gl.uniform1f(u.u_sizeRatio, params.sizeRatio);
    gl.uniform1f(u.u_correctionRatio, params.correctionRatio);
    gl.uniform1f(u.u_pixelRatio, params.pixelRatio);
    gl.uniform1f(u.u_feather, params.antiAliasingFeather);
    gl.uniform1f(u.u_minEdgeThickness, params.minEdgeThickness);
    gl.uniform2f(u.u_resolution, params.width, params.height);
  }
}

const NODE_VERTEX = /* glsl */ `
attribute vec4 a_id;
attribute vec4 a_color;
attribute vec2 a_position;
attribute float a_size;
attribute float a_angle;

uniform mat3 u_matrix;
uniform float u_sizeRatio;
uniform float u_correctionRatio;

varying vec4 v_color;
varying vec2 v_diffVector;
varying float v_radius;

const float bias = 255.0 / 254.0;

void main() {
  float size = a_size * u_correctionRatio / u_sizeRatio * 4.0;
  vec2 diffVector = size * vec2(cos(a_angle), sin(a_angle));
  vec2 position = a_position + diffVector;
  gl_Position = vec4((u_matrix * vec3(position, 1)).xy, 0, 1);
  v_diffVector = diffVector;
  v_radius = size / 2.0;
  #ifdef PICKING_MODE
  v_color = a_id;
  #else
  v_color = a_color;
  #endif
  v_color.a *= bias;
}
`;

const NODE_FRAGMENT = /* glsl */ `
precision highp float;

varying vec4 v_color;
varying vec2 v_diffVector;
varying float v_radius;

uniform float u_correctionRatio;

const vec4 transparent = vec4(0.0, 0.0, 0.0, 0.0);
const vec4 white = vec4(1.0, 1.0, 1.0, 1.0);

void main(void) {
  float aa = u_correctionRatio * 1.5;
  float ring = u_correctionRatio * 3.0;
  float dist = length(v_diffVector);
  #ifdef PICKING_MODE
  gl_FragColor = dist > v_radius ? transparent : v_color;
  #else
  float outer = smoothstep(v_radius - aa, v_radius, dist);
  float inner = smoothstep(v_radius - ring - aa, v_radius - ring, dist);
  vec4 fill = mix(v_color, white * v_color.a, inner);
  gl_FragColor = mix(fill, transparent, outer);
  #endif
}
`;

const NODE_UNIFORMS = ['u_sizeRatio', 'u_correctionRatio', 'u_matrix'] as const;

export class RingNodeProgram extends NodeProgram<(typeof NODE_UNIFORMS)[number]> {
  static readonly ANGLE_1 = 0;
  static readonly ANGLE_2 = (2 * Math.PI) / 3;
  static readonly ANGLE_3 = (4 * Math.PI) / 3;

  getDefinition() {
    return {
      VERTICES: 3,
      VERTEX_SHADER_SOURCE: NODE_VERTEX,
      FRAGMENT_SHADER_SOURCE: NODE_FRAGMENT,
      METHOD: WebGLRenderingContext.TRIANGLES,
      UNIFORMS: NODE_UNIFORMS,
      ATTRIBUTES: [
        { name: 'a_position', size: 2, type: FLOAT },
        { name: 'a_size', size: 1, type: FLOAT },
        { name: 'a_color', size: 4, type: UNSIGNED_BYTE, normalized: true },
        { name: 'a_id', size: 4, type: UNSIGNED_BYTE, normalized: true },
      ],
      CONSTANT_ATTRIBUTES: [{ name: 'a_angle', size: 1, type: FLOAT }],
      CONSTANT_DATA: [[RingNodeProgram.ANGLE_1], [RingNodeProgram.ANGLE_2], [RingNodeProgram.ANGLE_3]],
    };
  }

  processVisibleItem(nodeIndex: number, startIndex: number, data: NodeDisplayData): void {
    const a = this.array;
    let i = startIndex;
    a[i++] = data.x;
    a[i++] = data.y;
    a[i++] = data.size;
    a[i++] = floatColor(data.color);
    a[i++] = nodeIndex;
  }

  setUniforms(params: RenderParams, { gl, uniformLocations }: ProgramInfo<(typeof NODE_UNIFORMS)[number]>): void {
    gl.uniform1f(uniformLocations.u_correctionRatio, params.correctionRatio);
    gl.uniform1f(uniformLocations.u_sizeRatio, params.sizeRatio);
    gl.uniformMatrix3fv(uniformLocations.u_matrix, false, params.matrix);
  }
}
