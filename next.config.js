/**
 * Next.js serves pages and route handlers only; the server entry (server.ts)
 * owns every stateful object and shares it through lib/runtime.ts. The
 * packages below stay outside Next's bundle (native code, or state that must
 * be the server entry's single instance).
 * @type {import('next').NextConfig}
 */
const nextConfig = {
  serverExternalPackages: ["oidc-provider", "better-sqlite3", "@prisma/adapter-better-sqlite3", "@prisma/adapter-pg", "@prisma/client", "pg", "pkijs", "asn1js", "ssh2", "pkcs11js"],
  poweredByHeader: false,
  // forbidden() renders app/forbidden.tsx with a real 403 for non-administrators.
  experimental: { authInterrupts: true },
  reactStrictMode: true,
  typescript: { tsconfigPath: "tsconfig.json" },
  async headers() {
    return [
      {
        source: "/:path*",
        headers: [
          { key: "X-Frame-Options", value: "DENY" },
          { key: "X-Content-Type-Options", value: "nosniff" },
          // same-origin: nothing leaks to other sites, and same-origin form posts carry a real Origin header.
          { key: "Referrer-Policy", value: "same-origin" },
        ],
      },
    ];
  },
};

export default nextConfig;
