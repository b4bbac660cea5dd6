-- CreateTable
CREATE TABLE "MyProxyCode" (
    "id" TEXT NOT NULL,
    "identityId" TEXT NOT NULL,
    "codeHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "usedAt" TIMESTAMP(3),

    CONSTRAINT "MyProxyCode_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "MyProxyCode_codeHash_key" ON "MyProxyCode"("codeHash");

-- CreateIndex
CREATE INDEX "MyProxyCode_identityId_idx" ON "MyProxyCode"("identityId");

-- AddForeignKey
ALTER TABLE "MyProxyCode" ADD CONSTRAINT "MyProxyCode_identityId_fkey" FOREIGN KEY ("identityId") REFERENCES "Identity"("id") ON DELETE CASCADE ON UPDATE CASCADE;
