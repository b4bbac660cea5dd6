-- CreateTable
CREATE TABLE "CrlRecord" (
    "caId" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "thisUpdate" TIMESTAMP(3) NOT NULL,
    "nextUpdate" TIMESTAMP(3) NOT NULL,
    "issuedAt" TIMESTAMP(3) NOT NULL,
    "revokedCount" INTEGER NOT NULL,
    "der" BYTEA NOT NULL,

    CONSTRAINT "CrlRecord_pkey" PRIMARY KEY ("caId","number")
);
