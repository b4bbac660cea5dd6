import { portal } from "../../../lib/runtime";

export function GET() {
  return Response.json(portal().health());
}
